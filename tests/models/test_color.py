"""Colour correction: golden case, properties, validation."""

import pytest
import torch

from uavrt.errors import ConfigError, InputError
from uavrt.golden import Context, load_cases, run_case
from uavrt.models.color import adain_color_fix, bicubic_up4, color_fix, wavelet_decomposition, wavelet_reconstruction
from uavrt.runtime.torch_backend import TorchBackend


def test_golden(golden_dir):
    (case,) = load_cases(golden_dir, only=["color_correction"])
    results = run_case(case, Context(backend=TorchBackend()))
    print("\n".join(r.line() for r in results))
    assert results and all(r.passed for r in results), [r.line() for r in results if not r.passed]


def test_wavelet_parts_sum_to_the_image():
    img = torch.rand(2, 3, 20, 24) * 2 - 1
    high, low = wavelet_decomposition(img)
    torch.testing.assert_close(high + low, img, rtol=0, atol=1e-6)  # telescoping sum, fp32 rounding
    torch.testing.assert_close(wavelet_reconstruction(img, img), img, rtol=0, atol=1e-6)
    # a flat style keeps the content's detail on the style's constant colour
    flat = torch.full_like(img, 0.25)
    torch.testing.assert_close(wavelet_reconstruction(img, flat), high + 0.25, rtol=0, atol=1e-6)


def test_adain_takes_the_style_statistics():
    g = torch.Generator().manual_seed(0)
    content = torch.randn(3, 3, 16, 16, generator=g, dtype=torch.float64) * 0.3 + 0.2
    style = torch.randn(3, 3, 8, 8, generator=g, dtype=torch.float64) * 0.7 - 0.1  # size may differ
    out = adain_color_fix(content, style)
    torch.testing.assert_close(out.mean(dim=(2, 3)), style.mean(dim=(2, 3)))
    # std matches up to the 1e-5 added to both variances
    torch.testing.assert_close(out.flatten(2).var(dim=2), style.flatten(2).var(dim=2), rtol=1e-3, atol=1e-4)


def test_color_fix_methods_and_chunking():
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(5, 3, 16, 24, generator=g) * 2 - 1
    low = torch.rand(5, 3, 4, 6, generator=g) * 2 - 1
    assert color_fix(frames, low, "none") is frames
    up = bicubic_up4(low)
    assert up.shape == frames.shape
    torch.testing.assert_close(color_fix(frames, low, "wavelet", chunk=2), wavelet_reconstruction(frames, up), rtol=0, atol=0)
    torch.testing.assert_close(color_fix(frames, low, "adain", chunk=3), adain_color_fix(frames, up), rtol=0, atol=0)


def test_color_fix_errors():
    frames = torch.zeros(2, 3, 16, 16)
    with pytest.raises(ConfigError) as e:
        color_fix(frames, torch.zeros(2, 3, 4, 4), "Wavelet")
    assert e.value.param == "color_fix"
    with pytest.raises(InputError, match="low_res"):
        color_fix(frames, torch.zeros(2, 3, 8, 8), "adain")
    with pytest.raises(InputError):
        wavelet_reconstruction(frames, torch.zeros(2, 3, 8, 8))
