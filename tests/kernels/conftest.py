"""Fixtures of the kernel tests: a private kernel cache and the reference/golden helpers."""

import json

import pytest
import torch
from safetensors.torch import load_file


@pytest.fixture(scope="session")
def kernel_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("uavrt-cache")


@pytest.fixture(autouse=True)
def _private_kernel_cache(kernel_cache, monkeypatch):
    # builds land in a per-session temp dir, never in the user's ~/.cache
    monkeypatch.setenv("UAVRT_CACHE_DIR", str(kernel_cache))


@pytest.fixture(scope="session")
def load_case(golden_dir):
    def load(name):
        meta = json.loads((golden_dir / f"{name}.json").read_text())
        tensors = {k: (v.float() if v.is_floating_point() else v)
                   for k, v in load_file(str(golden_dir / meta.get("file", f"{name}.safetensors"))).items()}
        return meta, tensors
    return load


@pytest.fixture(scope="session")
def flow_pair():
    return _random_flow_pair


def _random_flow_pair(B, T1, H, W, *, seed, scale=4.0, block=6):
    """Flow pairs [B, 2, T1, H, W] that exercise every branch of the kernel.

    Per block of pixels, one of: smooth random motion up to ~`scale` px, large motion sending
    samples outside the frame, integer displacements (samples exactly on pixels), half-pixel
    displacements (nearest ties), and an unrelated backward flow (occlusion). Elsewhere the
    backward flow is the negated forward flow plus noise, and flows are constant within a
    block, so many pixels pass the consistency check and many fail it.
    """
    g = torch.Generator().manual_seed(seed)
    shape = (B, 2, T1, H, W)
    hb, wb = -(-H // block), -(-W // block)

    def blocks(t):  # [B, k, T1, hb, wb] -> [B, k, T1, H, W], constant per block
        return t.repeat_interleave(block, 3).repeat_interleave(block, 4)[..., :H, :W]

    coarse = (B, 2, T1, hb, wb)
    kind = blocks(torch.randint(0, 5, (B, 1, T1, hb, wb), generator=g)).expand(shape)
    smooth = blocks(torch.randn(coarse, generator=g) * scale) + torch.randn(shape, generator=g) * 0.2
    far = blocks(torch.randn(coarse, generator=g) * max(H, W))
    integer = blocks(torch.randint(-3, 4, coarse, generator=g).float())
    fw = torch.where(kind == 1, far, smooth)
    fw = torch.where(kind == 2, integer, fw)
    fw = torch.where(kind == 3, integer + 0.5, fw)
    bw = -fw + torch.randn(shape, generator=g) * 0.1
    bw = torch.where(kind == 4, torch.randn(shape, generator=g) * scale, bw)  # occluded: unrelated flow
    return fw.contiguous(), bw.contiguous()


@pytest.fixture(scope="session")
def assert_within():
    def check(got, want, atol):
        """max |got - want| <= atol (torch.testing.assert_close would import torch.distributed: seconds)."""
        assert got.shape == want.shape, f"shape {tuple(got.shape)} != {tuple(want.shape)}"
        err = (got.float() - want.float()).abs().max().item()
        assert err <= atol, f"max |diff| {err:.3g} > atol {atol:.3g}"
    return check
