"""Picture-quality measures for x4 outputs against references (tests and benchmarks/quality.py).

Videos are float arrays [T, H, W, 3] in 0..255 (uint8 arrays are accepted). All measures are
means over pixels and channels unless said otherwise.

- psnr / ssim: per frame (SSIM on BT.601 luma, 11x11 Gaussian window, sigma 1.5, the usual
  constants (0.01*255)^2 and (0.03*255)^2).
- frame_order_ok: every output frame is closest (MSE) to its own reference frame.
- edge_excess: at the given column (or row) boundaries, how much larger the output's jump across
  the boundary is than the reference's jump there (levels of 255): a seam shows as excess.
- temporal_excess: the same across frame boundaries (a window cross-fade at the wrong frames).
- warping_error: temporal consistency (needs OpenCV, the `bench` extra): mean over t of the MSE,
  over pixels not occluded, between output frame t+1 and output frame t warped by the flow of
  the INPUT video (computed on `flow_video`, e.g. the bicubic x4 input, with OpenCV's DIS
  optical flow, medium preset, on grey levels). Occlusion: forward-backward check
  |f(x) + b(x + f(x))|^2 > 0.01 (|f|^2 + |b(x + f(x))|^2) + 0.5 marks x occluded (Sundaram et al.).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def mse_per_frame(a, b) -> np.ndarray:
    return ((_f64(a) - _f64(b)) ** 2).mean(axis=(1, 2, 3))


def psnr(a, b, peak: float = 255.0) -> np.ndarray:
    """[T] PSNR in dB of each frame of `a` against the same frame of `b`."""
    return 10 * np.log10(peak ** 2 / np.maximum(mse_per_frame(a, b), 1e-10))


def _luma(x: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(_f64(x))
    return (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[:, None]  # [T, 1, H, W]


def ssim(a, b, peak: float = 255.0) -> np.ndarray:
    """[T] SSIM of each frame (luma), valid-region Gaussian windows."""
    x, y = _luma(a), _luma(b)
    k = torch.exp(-(torch.arange(11, dtype=torch.float64) - 5) ** 2 / (2 * 1.5 ** 2))
    k = (k[:, None] * k[None, :]) / k.sum() ** 2
    w = k[None, None]

    def blur(z):
        return F.conv2d(z, w)

    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3)).numpy()


def order_distances(out, ref) -> np.ndarray:
    """[T, T]: MSE of output frame i against reference frame j."""
    o, r = _f64(out), _f64(ref)
    return np.array([[((oi - rj) ** 2).mean() for rj in r] for oi in o])


def frame_order_ok(out, ref) -> bool:
    d = order_distances(out, ref)
    return bool(np.all(np.argmin(d, axis=1) == np.arange(len(d))))


def boundary_jumps(video, axis: int) -> np.ndarray:
    """Mean |difference| between neighbours along `axis` (0: frames, 1: rows, 2: columns)."""
    d = np.abs(np.diff(_f64(video), axis=axis))
    other = tuple(i for i in range(4) if i != axis)
    return d.mean(axis=other)


def edge_excess(out, ref, edges, axis: int = 2) -> float:
    """Largest (output jump - reference jump) across boundaries `edges` (the index of the first
    pixel after the boundary) along axis 1 (rows) or 2 (columns)."""
    jo, jr = boundary_jumps(out, axis), boundary_jumps(ref, axis)
    return float(max(jo[e - 1] - jr[e - 1] for e in edges))


def temporal_excess(out, ref) -> np.ndarray:
    """[T-1]: output's frame-to-frame change minus the reference's, per frame boundary."""
    return boundary_jumps(out, 0) - boundary_jumps(ref, 0)


# --- temporal consistency -----------------------------------------------------------------------

def _grey(frame) -> np.ndarray:
    f = _f64(frame)
    return np.clip(0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2], 0, 255).round().astype(np.uint8)


def dis_flow(a, b) -> np.ndarray:
    """[H, W, 2] flow (x, y) from frame a to frame b: a(p) ~ b(p + flow(p))."""
    import cv2
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_grey(a), _grey(b), None)


def _sample(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    import cv2
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def warping_error(video, flow_video) -> float:
    """Mean over t of the masked MSE between video[t+1] and video[t] warped along the input's flow."""
    v, fv = _f64(video), _f64(flow_video)
    errs = []
    for t in range(len(v) - 1):
        back = dis_flow(fv[t + 1], fv[t])  # frame t+1 -> t: video[t+1](p) ~ video[t](p + back(p))
        fwd = dis_flow(fv[t], fv[t + 1])
        fwd_at = _sample(fwd, back)  # forward flow at the matched point of frame t
        err = ((back + fwd_at) ** 2).sum(-1)
        ok = err <= 0.01 * ((back ** 2).sum(-1) + (fwd_at ** 2).sum(-1)) + 0.5
        warped = _sample(v[t].astype(np.float32), back)
        sq = ((v[t + 1] - warped) ** 2).mean(-1)
        errs.append(float(sq[ok].mean()) if ok.any() else float("nan"))
    return float(np.mean(errs))
