"""Boundary checks, dtypes, layouts and the build cache of uavrt.kernels (host build)."""

import pytest
import torch

from uavrt import kernels
from uavrt.errors import BackendUnavailable, ConfigError, InputError
from uavrt.kernels import host
from uavrt.models import propagation as ref


def _inputs(B=1, C=4, T=4, H=12, W=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, T, H, W, generator=g)
    fw = torch.randn(B, 2, T - 1, H, W, generator=g) * 2
    bw = -fw + torch.randn(B, 2, T - 1, H, W, generator=g) * 0.3
    return x, fw, bw


@pytest.mark.parametrize("kw,param", [
    (dict(mode="blend"), "mode"),
    (dict(interpolation="bicubic"), "interpolation"),
    (dict(fuse_scale=1.5), "fuse_scale"),
    (dict(alpha1=-0.1), "alpha1"),
    (dict(alpha2=float("nan")), "alpha2"),
])
def test_bad_parameters_name_themselves(kw, param):
    x, fw, bw = _inputs()
    with pytest.raises(ConfigError) as e:
        kernels.propagate(x, fw, bw, **kw)
    assert e.value.param == param and param in str(e.value)


@pytest.mark.parametrize("change,needle", [
    (lambda x, fw, bw: (x[:, :, :, 0], fw, bw), "x has shape"),
    (lambda x, fw, bw: (x.double(), fw, bw), "float64"),
    (lambda x, fw, bw: (x, fw[:, :, :2], bw[:, :, :2]), "flows_forward has shape"),
    (lambda x, fw, bw: (x, fw, bw[..., :8]), "differ in shape"),
    (lambda x, fw, bw: (x, fw[:, :1], bw[:, :1]), "[B, 2, T-1, Hf, Wf]"),
    (lambda x, fw, bw: (x, fw.int(), bw), "floating dtype"),
    (lambda x, fw, bw: (x, fw.to("meta"), bw), "one device"),
    (lambda x, fw, bw: (x.numpy(), fw, bw), "torch.Tensor"),
])
def test_bad_inputs(change, needle):
    with pytest.raises(InputError, match=None) as e:
        kernels.propagate(*change(*_inputs()))
    assert needle in str(e.value)


def test_single_frame_is_a_copy():
    x, fw, bw = _inputs(T=1)
    out = kernels.propagate(x, fw, bw)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


def test_inputs_untouched_and_layout_independent():
    x, fw, bw = _inputs(B=2, T=5)
    x0, fw0 = x.clone(), fw.clone()
    out = kernels.propagate(x, fw, bw, interpolation="bilinear")
    assert torch.equal(x, x0) and torch.equal(fw, fw0)
    # the same data through non-contiguous views (channels-last-like strides)
    xv = x.permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3)
    fv = fw.permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3)
    assert not xv.is_contiguous() and not fv.is_contiguous()
    assert torch.equal(kernels.propagate(xv, fv, bw, interpolation="bilinear"), out)


def test_batch_items_are_independent():
    x, fw, bw = _inputs(B=3, T=4)
    out = kernels.propagate(x, fw, bw)
    one = kernels.propagate(x[1:2], fw[1:2], bw[1:2])
    assert torch.equal(out[1:2], one)


def test_half_conversion_matches_torch():
    """The host build's float16 rounding is torch's (round to nearest even, subnormals, overflow)."""
    g = torch.Generator().manual_seed(1)
    vals = torch.cat([
        torch.randn(20000, generator=g) * 10,
        torch.randn(20000, generator=g) * 1e-5,  # half subnormals
        torch.randn(2000, generator=g) * 1e5,  # overflow to inf
        torch.tensor([65504.0, 65519.99, 65520.0, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14, 0.0, -0.0,
                      float("inf"), float("-inf")]),
        torch.arange(-4096, 4096) * (1 / 2048) + 1 / 4096,  # exact ties at several exponents
    ]).float()
    bits = host.float_to_half_bits(vals)
    assert torch.equal(bits, vals.half().view(torch.int16))
    # and back: every half value converts to the float torch gives
    every = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    finite = ~every.view(torch.float16).isnan()
    assert torch.equal(host.half_bits_to_float(every)[finite], every.view(torch.float16).float()[finite])
    assert host.half_bits_to_float(every)[~finite].isnan().all()


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_float16_latents(assert_within, interpolation):
    """fp16 latents keep their dtype; each step rounds its output frame to fp16 (as on the GPU).
    Tolerance vs the float32 reference on the same (fp16-representable) input: 2e-3 x max|ref|,
    about two fp16 ulps at the largest value (observed: about a quarter of that)."""
    x, fw, bw = _inputs(B=2, T=6, seed=3)
    x = (x * 3).half()
    out = kernels.propagate(x, fw, bw, interpolation=interpolation)
    assert out.dtype == torch.float16
    want = ref.propagate(x.float(), fw, bw, interpolation=interpolation)
    assert_within(out.float(), want, atol=2e-3 * max(1.0, want.abs().max().item()))
    warped = kernels.flow_warp(x[:, :, 0], fw[:, :, 0].permute(0, 2, 3, 1), interpolation)
    assert warped.dtype == torch.float16
    want_w = ref.flow_warp(x[:, :, 0].float(), fw[:, :, 0].permute(0, 2, 3, 1), interpolation)
    assert torch.equal(warped, want_w.half())  # one rounding of the float32 result


def test_host_build_is_cached(tmp_path):
    first = host.build_host_library(tmp_path)
    assert first.compiled and first.path.exists() and first.path.parent == tmp_path
    again = host.build_host_library(tmp_path)
    assert not again.compiled and again.path == first.path
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no temporary files left


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from uavrt.kernels import cache
    monkeypatch.setenv("UAVRT_CACHE_DIR", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "kernels"
    monkeypatch.delenv("UAVRT_CACHE_DIR")
    assert cache.cache_dir().parts[-3:] == (".cache", "uavrt", "kernels")


def test_missing_compiler_is_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(host.shutil, "which", lambda name: None)
    with pytest.raises(BackendUnavailable, match="g\\+\\+"):
        host.build_host_library(tmp_path)

