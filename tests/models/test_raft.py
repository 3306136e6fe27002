"""RAFT (raft-things): checkpoint layout, golden parity, building blocks, boundary errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from uavrt.errors import ConfigError, WeightsError
from uavrt.spec import RAFT as RAFT_SPEC
from uavrt.golden import Context, load_cases, run_case
from uavrt.models.raft import RAFT, build_raft, load_config, strip_dataparallel
from uavrt.models.raft.corr import bilinear_sampler, window_offsets
from uavrt.models.raft.model import upsample_flow
from uavrt.runtime.torch_backend import TorchBackend


@pytest.fixture(scope="module")
def raft_case(golden_dir):
    (case,) = load_cases(golden_dir, only=["raft"])
    return case


@pytest.fixture(scope="module")
def raft_weights(raft_case):
    return raft_case.weights()


def _manifest(golden_dir):
    rows = (golden_dir / "manifests" / "raft_things.tsv").read_text().splitlines()[1:]
    out = {}
    for row in rows:
        name, shape, _ = row.split("\t")
        out[name] = tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())
    return out


def test_state_dict_matches_official_manifest(golden_dir):
    with torch.device("meta"):
        model = RAFT.from_config(load_config("raft_things"))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    manifest = strip_dataparallel(_manifest(golden_dir))
    assert len(manifest) == 179
    assert set(ours) == set(manifest), (sorted(set(ours) - set(manifest)), sorted(set(manifest) - set(ours)))
    assert ours == manifest


def test_release_config():
    cfg = load_config("raft_things")
    assert cfg["_class_name"] == "RAFT"
    assert (cfg["small"], cfg["mixed_precision"], cfg["alternate_corr"], cfg["iters"]) == (False, False, False, 20)
    assert RAFT.from_config(cfg).iters == 20


def test_golden_raft(raft_case):
    results = run_case(raft_case, Context(backend=TorchBackend()))
    for r in results:
        print(r.line())
    assert len(results) == 4 and all(r.passed for r in results), [r.line() for r in results]


def test_iters_argument_overrides_default(raft_case, raft_weights):
    model = build_raft(raft_weights)  # iters 20 by default
    with torch.inference_mode():
        low, up = model(raft_case.input("image1"), raft_case.input("image2"), iters=4)
    for name, got in (("flow_low_iters4", low), ("flow_up_iters4", up)):
        ref = raft_case.tensors[f"expected.{name}"]
        assert (got - ref).abs().max().item() <= raft_case.meta["tolerance"][name]["atol"], name


def test_strip_dataparallel():
    t = torch.zeros(1)
    assert list(strip_dataparallel({"module.fnet.conv1.weight": t})) == ["fnet.conv1.weight"]
    assert list(strip_dataparallel({"fnet.conv1.weight": t})) == ["fnet.conv1.weight"]
    with pytest.raises(WeightsError, match="mixes"):
        strip_dataparallel({"module.a": t, "b": t})


def test_build_raft_rejects_incomplete_weights(raft_weights):
    partial = dict(raft_weights)
    partial.pop("module.update_block.mask.2.bias")
    with pytest.raises(WeightsError, match="mask.2.bias"):
        build_raft(partial)
    wrong = dict(raft_weights)
    wrong["module.fnet.conv2.bias"] = torch.zeros(128)
    with pytest.raises(WeightsError, match="fnet.conv2.bias"):
        build_raft(wrong)


@pytest.mark.parametrize("key", ["small", "mixed_precision", "alternate_corr"])
def test_from_config_rejects_unsupported_variants(key):
    cfg = dict(load_config("raft_things"), **{key: True})
    with pytest.raises(ConfigError, match=f"raft.{key}"):
        RAFT.from_config(cfg)
    with pytest.raises(ConfigError, match="bogus"):
        RAFT.from_config(dict(load_config("raft_things"), bogus=1))


@pytest.mark.parametrize("size", [(120, 128), (128, 120), (128, 132)])
def test_forward_rejects_unusable_sizes(size):
    model = RAFT(iters=1)
    x = torch.zeros(1, 3, *size)
    with pytest.raises(ConfigError, match=str(size[0] if size[0] != 128 else size[1])):
        model(x, x)


def test_bilinear_sampler_is_pixel_bilinear_align_corners():
    img = torch.arange(20, dtype=torch.float32).reshape(1, 1, 4, 5) ** 1.5  # value(y, x)
    # inside: (x, y) = (1.25, 2.5); half outside the right edge: (4.5, 0) blends with zero padding
    coords = torch.tensor([[[[1.25, 2.5], [4.5, 0.0]]]])  # [1, 1, 2, 2]
    got = bilinear_sampler(img, coords).reshape(2)
    v = img[0, 0]
    top = 0.75 * v[2, 1] + 0.25 * v[2, 2]
    bottom = 0.75 * v[3, 1] + 0.25 * v[3, 2]
    expect = torch.stack([0.5 * top + 0.5 * bottom, 0.5 * v[0, 4]])
    torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-6)


def test_window_offsets_follow_official_axis_order():
    off = window_offsets(4)
    assert off.shape == (1, 9, 9, 2)
    # official meshgrid(dy, dx) added to (x, y): axis 1 moves x, axis 2 moves y
    assert off[0, 0, 5].tolist() == [-4.0, 1.0]
    assert off[0, 8, 0].tolist() == [4.0, -4.0]


def test_convex_upsampling_equals_unfold_formulation():
    g = torch.Generator().manual_seed(3)
    flow = torch.randn(2, 2, 5, 7, generator=g)
    mask = torch.randn(2, 576, 5, 7, generator=g)
    # the official formulation (F.unfold of 8*flow, softmax over the 9 taps)
    m = torch.softmax(mask.view(2, 1, 9, 8, 8, 5, 7), dim=2)
    u = F.unfold(8 * flow, [3, 3], padding=1).view(2, 2, 9, 1, 1, 5, 7)
    ref = torch.sum(m * u, dim=2).permute(0, 1, 4, 2, 5, 3).reshape(2, 2, 40, 56)
    assert torch.equal(upsample_flow(flow, mask), ref)


@pytest.mark.slow
def test_onnx_export_dynamic_shapes_matches_torch(raft_weights, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = build_raft(raft_weights, iters=1)
    n, h, w = (torch.export.Dim(d, min=lo, max=256) for d, lo in (("N", 1), ("h", 16), ("w", 16)))
    dims = {0: n, 2: 8 * h, 3: 8 * w}
    x = torch.rand(1, 3, 128, 160) * 2 - 1
    prog = torch.onnx.export(model, (), kwargs={"image1": x, "image2": x.flip(-1)}, dynamo=True, opset_version=21,
                             dynamic_shapes={"image1": dims, "image2": dims},
                             input_names=list(RAFT_SPEC.input_names), output_names=list(RAFT_SPEC.output_names))
    prog.save(str(tmp_path / "raft.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "raft.onnx"), providers=["CPUExecutionProvider"])
    for shape in ((1, 3, 128, 160), (2, 3, 136, 128)):
        a, b = torch.rand(*shape) * 2 - 1, torch.rand(*shape) * 2 - 1
        with torch.inference_mode():
            ref = model(a, b)
        got = sess.run(None, {"image1": a.numpy(), "image2": b.numpy()})
        for g_, r in zip(got, ref):
            torch.testing.assert_close(torch.from_numpy(g_), r, atol=1e-4, rtol=1e-4)
