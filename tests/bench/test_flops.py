"""FLOP counting, the GPU peak table and the propagation byte count."""

import pytest
import torch

from uavrt.bench.flops import UNetFlops, flops_crosscheck, gpu_peak_tflops, propagation_bytes
from uavrt.models.demo import DEMO_UNET


def test_release_unet_crosscheck():
    """The lead's reference: 1.84 TFLOP (32x32) and 7.12 TFLOP (64x64) per call at batch 2, 8
    frames, counted on the reference implementation, which projects the text K/V once per
    frame. uavrt's count plus exactly that redundancy must land on the reference numbers (given
    to 3 significant digits), and uavrt's own count must be below them."""
    rows = {r["latent"]: r for r in flops_crosscheck((32, 64))}
    for latent, ref in (("32x32", 1.84), ("64x64", 7.12)):
        r = rows[latent]
        assert r["reference_equivalent_tflop"] == pytest.approx(ref, abs=0.005), r
        assert r["uavrt_tflop"] < ref - 0.05
    # the redundancy depends on frames and text length, not on the latent size
    assert rows["32x32"]["reference_text_kv_repeat_tflop"] == rows["64x64"]["reference_text_kv_repeat_tflop"]


def test_count_scales_with_the_call():
    f = UNetFlops(DEMO_UNET)
    one = f.per_call(1, 4, 16, 16)
    assert f.per_call(2, 4, 16, 16) == 2 * one  # batch is independent samples
    assert one < f.per_call(1, 8, 16, 16) < 2.2 * one  # temporal attention: slightly super-linear in T
    assert f.per_call(1, 4, 32, 32) > 3.5 * one  # ~pixels (convs) and more (spatial attention)


def test_peak_table():
    assert gpu_peak_tflops("NVIDIA H100 80GB HBM3", "fp16", True)[0] == 989.4
    assert gpu_peak_tflops("NVIDIA H100 PCIe", "fp16", True)[0] == 756.0
    assert gpu_peak_tflops("NVIDIA H200", "fp32", True)[0] == 494.7
    assert gpu_peak_tflops("NVIDIA H200", "fp32", False)[0] == 66.9
    assert gpu_peak_tflops("NVIDIA A100-SXM4-80GB", "fp16", True)[0] == 312.0
    peak, why = gpu_peak_tflops("Some Future GPU", "fp16", True)
    assert peak is None and "--peak-tflops" in why


def test_propagation_bytes():
    # [1, 4, 3, 2, 5] fp32: 2 passes x 2 steps x 10 px x (3 frames x 4 ch x 4 B + 2 flows x 2 x 4 B)
    assert propagation_bytes((1, 4, 3, 2, 5), torch.float32) == 2 * 2 * 10 * (48 + 16)
    assert propagation_bytes((1, 4, 3, 2, 5), torch.float16) == 2 * 2 * 10 * (24 + 16)
    assert propagation_bytes((1, 4, 1, 2, 5), torch.float32) == 0
