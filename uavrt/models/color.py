"""Optional colour correction of the upscaled frames against the low-res input.

Both methods take per-frame images [N, C, H, W] (frames as the batch) and keep the content's
detail while borrowing the style's colour:
- wavelet: high frequencies of the content + low frequencies of the style, from 5 levels of
  a dilated 3x3 binomial blur (an a-trous pyramid, effective radius ~32 px);
- adain: per-frame, per-channel mean/std of the content replaced by the style's (unbiased
  variance + 1e-5).
In inference the style is the low-res frame upscaled x4 bicubically (`bicubic_up4`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError, check_choice, check_range

METHODS = ("none", "wavelet", "adain")
WAVELET_LEVELS = 5
ADAIN_EPS = 1e-5


# --------------------------------------------------------------------------- wavelet


def _binomial_kernel(channels: int, like: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]],
                     dtype=like.dtype, device=like.device)
    return k[None, None].repeat(channels, 1, 1, 1)  # [C, 1, 3, 3] depthwise


def _wavelet_blur(image: torch.Tensor, radius: int, kernel: torch.Tensor) -> torch.Tensor:
    # replicate padding of `radius` keeps the size with a dilation-`radius` 3x3 kernel
    padded = F.pad(image, (radius, radius, radius, radius), mode="replicate")
    return F.conv2d(padded, kernel, groups=image.shape[1], dilation=radius)


def wavelet_decomposition(image: torch.Tensor, levels: int = WAVELET_LEVELS):
    """(high, low) frequency parts of image [N, C, H, W]; high + low == image (up to rounding)."""
    kernel = _binomial_kernel(image.shape[1], image)
    high = torch.zeros_like(image)
    low = image
    for i in range(levels):
        blurred = _wavelet_blur(low, 2 ** i, kernel)
        high = high + (low - blurred)  # same accumulation order as the release
        low = blurred
    return high, low


def wavelet_reconstruction(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """content's detail on style's colour. content, style: [N, C, H, W] of the same shape."""
    _check_pair(content, style)
    content_high, _ = wavelet_decomposition(content)
    _, style_low = wavelet_decomposition(style)
    return content_high + style_low


# --------------------------------------------------------------------------- adain


def _mean_std(feat: torch.Tensor, eps: float = ADAIN_EPS):
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    std = (flat.var(dim=2) + eps).sqrt().reshape(n, c, 1, 1)  # unbiased variance, as released
    mean = flat.mean(dim=2).reshape(n, c, 1, 1)
    return mean, std


def adain_color_fix(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Adaptive instance normalisation per frame and channel. content, style: [N, C, H, W]
    (the spatial sizes may differ: only the statistics of the style are used)."""
    if content.dim() != 4 or style.dim() != 4 or content.shape[:2] != style.shape[:2]:
        raise InputError(f"adain needs [N, C, H, W] content/style with equal N, C; got "
                         f"{tuple(content.shape)} and {tuple(style.shape)}")
    style_mean, style_std = _mean_std(style)
    content_mean, content_std = _mean_std(content)
    return (content - content_mean) / content_std * style_std + style_mean


# --------------------------------------------------------------------------- entry points


def bicubic_up4(style_lr: torch.Tensor) -> torch.Tensor:
    """Low-res frames [N, C, h, w] -> [N, C, 4h, 4w], bicubic (a=-0.75), align_corners False.
    Not clamped: the release feeds the overshoot to the colour fix as is."""
    return F.interpolate(style_lr, scale_factor=4, mode="bicubic")


def _check_pair(content: torch.Tensor, style: torch.Tensor):
    if content.dim() != 4 or content.shape != style.shape:
        raise InputError(f"content {tuple(content.shape)} and style {tuple(style.shape)} must both be "
                         f"[N, C, H, W] of the same shape")


def color_fix(frames: torch.Tensor, low_res: torch.Tensor, method: str = "none", *,
              chunk: int = 8) -> torch.Tensor:
    """Colour-correct upscaled frames against the low-res input.

    frames: [T, 3, H, W] in [-1, 1]; low_res: [T, 3, H/4, W/4] in [-1, 1] (the clean input).
    method: "none" | "wavelet" | "adain". Every frame is corrected on its own, so frames are
    processed `chunk` at a time to bound the memory of the 4x style and the pyramid.
    Returns [T, 3, H, W] (not clamped; the writer clamps).
    """
    check_choice("color_fix", method, METHODS)
    check_range("chunk", chunk, 1, 1 << 20, integer=True)
    if method == "none":
        return frames
    t, c, h, w = frames.shape
    if low_res.dim() != 4 or tuple(low_res.shape) != (t, c, h // 4, w // 4) or h % 4 or w % 4:
        raise InputError(f"low_res has shape {tuple(low_res.shape)}; expected [T, C, H/4, W/4] = "
                         f"{[t, c, h / 4, w / 4]} for frames {tuple(frames.shape)}")
    fix = wavelet_reconstruction if method == "wavelet" else adain_color_fix
    out = torch.empty_like(frames)
    for s in range(0, t, chunk):
        style = bicubic_up4(low_res[s:s + chunk].to(frames.dtype))
        out[s:s + chunk] = fix(frames[s:s + chunk], style)
    return out
