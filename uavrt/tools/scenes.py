"""Procedural video scenes: the training data of the demo model and the held-out test clips.

A scene is a static canvas (a gradient or a texture, sharp-edged shapes, text-like strokes,
stripes) seen through a camera that pans by a whole number of high-res pixels per frame (a
quarter of a low-res pixel), plus one sprite moving on its own. Everything comes from a numpy
Generator seeded by the caller, so a (seed, size, frames) triple is always the same clip.
Training uses seeds [0, N); tests and benchmarks use seeds >= HELD_OUT_SEED, never trained on.

    hr = scene_clip(seed, frames=8, height=64, width=64)   # float32 [T, H, W, 3] in [0, 1]
    lr = downscale_x4(hr)                                  # uint8   [T, H/4, W/4, 3]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

HELD_OUT_SEED = 1_000_000  # clips at seeds >= this are never in the training set
MAX_PAN = 3  # high-res pixels per frame


def _gradient(rng, yy, xx):
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    return a + (b - a) * t[..., None]


def _texture(rng, yy, xx):
    out = np.zeros(yy.shape + (3,))
    for _ in range(rng.integers(2, 5)):  # a few coloured gratings of random frequency/orientation
        angle, freq = rng.uniform(0, np.pi), rng.uniform(0.05, 0.6)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
        out += wave[..., None] * rng.uniform(-0.25, 0.25, 3)
    return out + rng.uniform(0.25, 0.75, 3)


def _paint(canvas, mask, colour):
    canvas[mask] = colour


def _shapes(rng, canvas, yy, xx, n):
    h, w = yy.shape
    for _ in range(n):
        kind = rng.integers(0, 3)
        colour = rng.uniform(0, 1, 3)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        size = rng.uniform(4, max(6, min(h, w) / 4))
        if kind == 0:  # axis-aligned rectangle
            ry, rx = size * rng.uniform(0.4, 1.2), size * rng.uniform(0.4, 1.2)
            _paint(canvas, (np.abs(yy - cy) < ry) & (np.abs(xx - cx) < rx), colour)
        elif kind == 1:  # disc or ring
            r = np.hypot(yy - cy, xx - cx)
            m = r < size
            if rng.random() < 0.4:
                m &= r > size * rng.uniform(0.4, 0.8)
            _paint(canvas, m, colour)
        else:  # rotated thin bar (an oblique edge)
            a = rng.uniform(0, np.pi)
            u = np.cos(a) * (xx - cx) + np.sin(a) * (yy - cy)
            v = -np.sin(a) * (xx - cx) + np.cos(a) * (yy - cy)
            _paint(canvas, (np.abs(u) < size) & (np.abs(v) < rng.uniform(1, 4)), colour)


def _segment_mask(yy, xx, p0, p1, half_width):
    d = p1 - p0
    t = np.clip(((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / max(d @ d, 1e-6), 0, 1)
    return np.hypot(yy - (p0[0] + t * d[0]), xx - (p0[1] + t * d[1])) <= half_width


def _strokes(rng, canvas, yy, xx):
    """Text-like lines: rows of 'glyphs', each 2-3 short strokes, dark on light or light on dark."""
    h, w = yy.shape
    ink = np.full(3, 0.05) if canvas.mean() > 0.5 else np.full(3, 0.95)
    ink = np.clip(ink + rng.uniform(-0.05, 0.05, 3), 0, 1)
    glyph = rng.uniform(5, 10)  # glyph height in high-res pixels
    half = rng.uniform(0.6, 1.4)
    y = rng.uniform(0, h / 2)
    for _ in range(rng.integers(1, 4)):
        x = rng.uniform(0, w / 3)
        while x < w - glyph:
            for _ in range(rng.integers(2, 4)):
                p0 = np.array([y + rng.uniform(0, glyph), x + rng.uniform(0, glyph * 0.7)])
                p1 = np.array([y + rng.uniform(0, glyph), x + rng.uniform(0, glyph * 0.7)])
                m = _segment_mask(yy, xx, p0, p1, half)
                canvas[m] = ink
            x += glyph * rng.uniform(0.8, 1.1) + (glyph if rng.random() < 0.2 else 0)  # word gaps
        y += glyph * 1.6
        if y > h - glyph:
            break


def _stripes(rng, canvas, yy, xx):
    h, w = yy.shape
    y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    y1, x1 = y0 + rng.integers(h // 6, h // 2), x0 + rng.integers(w // 6, w // 2)
    period = rng.integers(3, 9)
    vertical = rng.random() < 0.5
    phase = ((xx if vertical else yy) // period) % 2 == 0
    m = phase & (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
    canvas[m] = rng.uniform(0, 1, 3)


def scene_canvas(rng, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    canvas = _gradient(rng, yy, xx) if rng.random() < 0.45 else _texture(rng, yy, xx)
    canvas = np.clip(canvas, 0, 1)
    area = height * width / 4096
    _shapes(rng, canvas, yy, xx, int(rng.integers(2, 6) * max(1.0, area)))
    if rng.random() < 0.4:
        _stripes(rng, canvas, yy, xx)
    if rng.random() < 0.6:
        _strokes(rng, canvas, yy, xx)
    return canvas


def scene_clip(seed: int, frames: int = 8, height: int = 64, width: int = 64, pan=None) -> np.ndarray:
    """float32 [T, H, W, 3] in [0, 1]: a panning camera over a canvas, plus a moving sprite.

    pan: (rows, cols) high-res pixels per frame instead of the seeded pan (tests want motion).
    """
    rng = np.random.default_rng(seed)
    vy, vx = rng.integers(-MAX_PAN, MAX_PAN + 1, 2)
    if pan is not None:
        vy, vx = int(pan[0]), int(pan[1])
    margin_y, margin_x = abs(int(vy)) * frames + 1, abs(int(vx)) * frames + 1
    canvas = scene_canvas(rng, height + margin_y, width + margin_x)
    y0 = 0 if vy >= 0 else margin_y - 1
    x0 = 0 if vx >= 0 else margin_x - 1
    # the sprite: a disc or a square moving at its own speed
    colour = rng.uniform(0, 1, 3)
    r = rng.uniform(3, max(4, min(height, width) / 6))
    cy, cx = rng.uniform(r, height - r), rng.uniform(r, width - r)
    sy, sx = rng.uniform(-3, 3, 2)
    square = rng.random() < 0.5
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.empty((frames, height, width, 3), np.float32)
    for t in range(frames):
        f = canvas[y0 + vy * t:y0 + vy * t + height, x0 + vx * t:x0 + vx * t + width].copy()
        py, px = cy + sy * t, cx + sx * t
        m = (np.maximum(np.abs(yy - py), np.abs(xx - px)) < r) if square else (np.hypot(yy - py, xx - px) < r)
        f[m] = colour
        out[t] = f
    return out


def downscale_x4(hr: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] float in [0, 1] -> uint8 [T, H/4, W/4, 3]: antialiased bicubic, rounded."""
    x = torch.from_numpy(np.ascontiguousarray(hr, np.float32)).permute(0, 3, 1, 2)
    lr = F.interpolate(x, scale_factor=0.25, mode="bicubic", antialias=True, align_corners=False)
    return (lr.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def bicubic_x4(lr: np.ndarray) -> np.ndarray:
    """uint8 [T, h, w, 3] -> float [T, 4h, 4w, 3] in [0, 255]: the baseline the model must beat or match."""
    x = torch.from_numpy(lr).permute(0, 3, 1, 2).float()
    up = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    return up.clamp(0, 255).permute(0, 2, 3, 1).numpy().astype(np.float64)


def to_uint8(hr: np.ndarray) -> np.ndarray:
    return (np.clip(hr, 0, 1) * 255).round().astype(np.uint8)
