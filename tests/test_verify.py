"""Cross-backend verification on CPU: torch fp32 vs torch fp16 (and ONNX Runtime once it exists)."""

import json

import numpy as np
import pytest
import torch

from uavrt.errors import ConfigError
from uavrt.spec import NetworkSpec, f32
from uavrt.runtime.backend import Backend, Runner
from uavrt.runtime.torch_backend import TorchBackend
from uavrt.commands import main
from uavrt.verify import Tolerance, verify, verify_dims, verify_release

TOY = NetworkSpec("toy", inputs=(f32("x", "B", 16),), outputs=(f32("y", "B", 8), f32("z", "B", 1)),
                  example={"B": 3})


class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(16, 32), torch.nn.Linear(32, 8)

    def forward(self, x):
        y = self.b(torch.nn.functional.gelu(self.a(x)))
        return y, y.sum(-1, keepdim=True)


@pytest.fixture
def toy():
    torch.manual_seed(0)
    return {"toy": (TOY, Toy())}, {"toy": {"x": torch.randn(4, 16)}}


def _direct(module, x, dtype):
    with torch.no_grad():
        return [o.float() for o in module.to(dtype)(x.to(dtype))]


def test_fp16_vs_fp32_statistics_are_right(toy):
    nets, inputs = toy
    module = nets["toy"][1]
    ref = _direct(_copy(module), inputs["toy"]["x"], torch.float32)
    rep = verify({"fp32": TorchBackend(precision="fp32"), "fp16": TorchBackend(precision="fp16")}, nets, inputs,
                 tolerances={"toy": Tolerance(atol=1e-2, rtol=1e-2)})
    assert rep.reference == "fp32" and rep.passed and [r.output for r in rep.rows] == ["y", "z"]
    got = _direct(_copy(module), inputs["toy"]["x"], torch.float16)
    for row, g, r in zip(rep.rows, got, ref):
        d = (g - r).abs()
        assert row.max_abs == pytest.approx(d.max().item(), rel=1e-6)
        assert row.mean_abs == pytest.approx(d.mean().item(), rel=1e-5)
        assert row.max_rel == pytest.approx((d / r.abs()).max().item(), rel=1e-4)  # relative to the reference
        assert row.ref_peak == pytest.approx(r.abs().max().item())
        assert 0 < row.max_abs < 1e-2
    # the caller's module is left as it was (each backend got its own copy)
    assert next(module.parameters()).dtype == torch.float32
    assert "| toy | fp16 | y |" in rep.format() and rep.format().endswith("PASSED")
    assert rep.to_dict()["passed"] is True


def _copy(m):
    c = Toy()
    c.load_state_dict(m.state_dict())
    return c


def test_tight_tolerance_fails(toy):
    nets, inputs = toy
    rep = verify({"fp32": TorchBackend(), "fp16": TorchBackend(precision="fp16")}, nets, inputs,
                 tolerances={"toy": Tolerance(atol=1e-7, rtol=1e-7)})
    assert not rep.passed and rep.format().endswith("FAILED")


def test_other_reference(toy):
    nets, inputs = toy
    rep = verify({"fp32": TorchBackend(), "fp16": TorchBackend(precision="fp16")}, nets, inputs, reference="fp16",
                 tolerances={"toy": Tolerance(1e-2, 1e-2)})
    assert rep.reference == "fp16" and {r.backend for r in rep.rows} == {"fp32"}


class _Broken(Backend):
    """A backend whose runner returns a truncated `y` and NaN `z`."""
    name = "broken"

    def from_module(self, spec, module):
        class R(Runner):
            def _run(self, inputs):
                y, z = module(inputs["x"])
                return {"y": y[:, :4], "z": torch.full_like(z, float("nan"))}
        return R(spec, "cpu", "fp32")


def test_wrong_shape_and_nan_fail(toy):
    nets, inputs = toy
    rep = verify({"torch": TorchBackend(), "broken": _Broken()}, nets, inputs,
                 tolerances={"toy": Tolerance(1.0, 1.0)})
    rows = {r.output: r for r in rep.rows}
    assert not rows["y"].passed and "shape" in rows["y"].note
    assert not rows["z"].passed and np.isnan(rows["z"].max_abs)


def test_argument_errors(toy):
    nets, inputs = toy
    one = {"torch": TorchBackend()}
    two = {"a": TorchBackend(), "b": TorchBackend()}
    with pytest.raises(ConfigError, match="at least two"):
        verify(one, nets, inputs, tolerances={"toy": Tolerance(1, 1)})
    with pytest.raises(ConfigError, match="reference"):
        verify(two, nets, inputs, reference="c", tolerances={"toy": Tolerance(1, 1)})
    with pytest.raises(ConfigError, match="tolerances"):
        verify(two, nets, inputs)  # no default tolerance for a toy network
    with pytest.raises(ConfigError, match="missing 'toy'"):
        verify(two, nets, {}, tolerances={"toy": Tolerance(1, 1)})


def test_torch_vs_onnxruntime(toy):
    ort_backend = pytest.importorskip("uavrt.runtime.ort_backend",
                                      reason="uavrt.runtime.ort_backend is not written yet")
    nets, inputs = toy
    rep = verify({"torch": TorchBackend(), "onnxruntime": ort_backend.OrtBackend()}, nets, inputs,
                 tolerances={"toy": Tolerance(atol=1e-5, rtol=1e-4)})
    assert rep.passed, rep.format()


# --- `uavrt verify` on release-layout weights ----------------------------------------------------
def _tiny_vae_weights(root):
    from uavrt.models.demo import DEMO_VAE
    from uavrt.models.release import build_network

    (root / "vae").mkdir(parents=True)
    cfg = DEMO_VAE["vae_3d"]
    (root / "vae" / "vae_3d_config.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    torch.save(build_network("vae_3d", cfg).state_dict(), root / "vae" / "vae_3d.bin")
    return root


@pytest.mark.slow  # the on-the-fly ONNX export of even the tiny VAE takes ~75 s on 2 cores
def test_verify_release_torch_vs_onnxruntime(tmp_path, capsys):
    pytest.importorskip("uavrt.runtime.ort_backend", reason="uavrt.runtime.ort_backend is not written yet")
    weights = _tiny_vae_weights(tmp_path / "w")
    argv = ["verify", "--engines", str(tmp_path / "e"), "--weights", str(weights), "--networks", "vae_3d",
            "--backend", "onnxruntime", "--device", "cpu"]
    assert main(argv) == 0  # graphs exported on the fly (none in engines/)
    out = capsys.readouterr().out
    assert "| vae_3d | onnxruntime | video |" in out and out.rstrip().endswith("PASSED")


def test_verify_release_arguments(tmp_path):
    with pytest.raises(ConfigError, match="exactly one"):
        verify_release(tmp_path, networks=("vae_3d",), backend="onnxruntime")
    with pytest.raises(ConfigError, match="exactly one"):
        verify_release(tmp_path, weights=tmp_path, demo=True)
    with pytest.raises(ConfigError, match="backend"):
        verify_release(tmp_path, weights=tmp_path, backend="torch")
    with pytest.raises(ConfigError, match="network"):
        verify_release(tmp_path, weights=tmp_path, networks=("flownet",), backend="onnxruntime")


def test_verify_dims_fit_the_engine_profile():
    from uavrt.export.profiles import ProfilePlan, derive_profiles
    from uavrt.spec import RAFT, UNET

    cfg = {"cross_attention_dim": 32}
    free = verify_dims(UNET, cfg)
    assert free == UNET.example_dims(cfg)
    profiles = derive_profiles(UNET, ProfilePlan(text_len=77), config=cfg)
    dims = verify_dims(UNET, cfg, profiles)
    assert dims["H"] == dims["W"] == 32 and dims["L"] == 77 and dims["C"] == 32  # example 16x24 / 5 tokens lifted
    assert dims["T"] == free["T"] and dims["B"] == 2
    shapes = {t.name: tuple(s if isinstance(s, int) else dims[s] for s in t.dims) for t in UNET.inputs}
    from uavrt.runtime.trt_backend import check_input_shapes
    check_input_shapes("unet", profiles, shapes)  # inside the profile by construction
    raft = verify_dims(RAFT, {}, derive_profiles(RAFT, ProfilePlan()))
    assert raft["H"] % 8 == 0 and raft["W"] % 8 == 0
