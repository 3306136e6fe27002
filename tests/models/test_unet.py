"""UNetVideoModel: checkpoint layout, golden parity, input validation, fp16 sanity."""

import json
from pathlib import Path

import pytest
import torch

from uavrt.errors import ConfigError, InputError
from uavrt.spec import UNET
from uavrt.golden import Context, load_cases, run_case
from uavrt.models.unet import UNetVideoModel
from uavrt.models.unet.embeddings import relative_position_buckets
from uavrt.runtime.torch_backend import TorchBackend

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
RELEASE_CONFIG = Path(__file__).resolve().parents[2] / "uavrt" / "models" / "configs" / "unet_video.json"


def _manifest(name):
    rows = (GOLDEN / "manifests" / name).read_text().splitlines()[1:]
    return {n: tuple(json.loads(s)) for n, s, _ in (r.split("\t") for r in rows)}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # These networks are tiny: on a shared 2-core machine, OpenMP threads waiting for each other
    # cost 10-30x the arithmetic. One thread is faster and does not disturb other tests.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_case():
    return load_cases(GOLDEN, only=["unet_16x16"])[0]


@pytest.fixture(scope="module")
def tiny_model(tiny_case):
    model = UNetVideoModel.from_config(tiny_case.meta["config"])
    model.load_state_dict(tiny_case.weights(), strict=True)
    return model.eval()


def _inputs(b=1, t=3, h=8, w=8, l=5, c=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"sample": torch.randn(b, 4, t, h, w, generator=g), "timestep": torch.tensor(499),
            "low_res": torch.rand(b, 3, t, h, w, generator=g) * 2 - 1,
            "encoder_hidden_states": torch.randn(b, l, c, generator=g),
            "class_labels": torch.full((b,), 120, dtype=torch.int64)}


def test_state_dict_matches_release_manifest():
    cfg = json.loads(RELEASE_CONFIG.read_text())
    assert cfg["_class_name"] == "UNetVideoModel"
    with torch.device("meta"):
        model = UNetVideoModel.from_config(cfg)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = _manifest("unet_video.tsv")
    assert sorted(set(got) - set(want)) == [] and sorted(set(want) - set(got)) == []
    assert {k: s for k, s in got.items() if want[k] != s} == {}
    summary = json.loads((GOLDEN / "manifests" / "summary.json").read_text())["models"]["unet_video"]
    assert sum(p.numel() for p in model.parameters()) == summary["unique_parameters"]


def test_rotary_freqs_one_shared_tensor(tiny_model, tiny_case):
    sd = tiny_model.state_dict()
    names = [k for k in sd if k.endswith("rotary_emb.freqs")]
    n_temporal = sum(1 for k in sd if k.endswith("time_rel_pos_bias.relative_attention_bias.weight"))
    assert len(names) == n_temporal + 1 and "temporal_rotary_emb.freqs" in names
    assert len({sd[k].data_ptr() for k in names}) == 1
    # loading writes every alias into the same tensor: a changed value shows under all names
    model = UNetVideoModel.from_config(tiny_case.meta["config"])
    weights = tiny_case.weights()
    for k in names:
        weights[k] = weights[k] * 2
    model.load_state_dict(weights, strict=True)
    sd2 = model.state_dict()
    assert len({sd2[k].data_ptr() for k in names}) == 1
    torch.testing.assert_close(model.temporal_rotary_emb.freqs, tiny_case.weights()[names[0]] * 2)


@pytest.mark.parametrize("name", ["unet_16x16", "unet_12x20"])
def test_golden_case(name):
    case = load_cases(GOLDEN, only=[name])[0]
    results = run_case(case, Context(backend=TorchBackend()))
    assert results and all(r.passed for r in results), "\n".join(r.line() for r in results)


def test_relative_position_buckets_reference_formula():
    b = relative_position_buckets(40, "cpu")
    # key not after the query: exact distance below 8, then 8 + floor(8*log(d/8)/log(4)), max 15
    assert [b[i, 0].item() for i in (0, 1, 7, 8, 15, 16, 31, 32, 39)] == [0, 1, 7, 8, 11, 12, 15, 15, 15]
    # key after the query: the same buckets shifted by 16
    assert [b[0, j].item() for j in (1, 7, 8, 16, 39)] == [17, 23, 24, 28, 31]
    assert b.dtype == torch.int64 and torch.equal(b.diagonal(), torch.zeros(40, dtype=torch.int64))


def test_wrong_shapes_raise_clear_errors(tiny_model):
    x = _inputs()
    runner = TorchBackend().from_module(UNET, tiny_model)
    with pytest.raises(InputError, match=r"unet\.low_res"):
        runner(**{**x, "low_res": x["low_res"][:, :, :2]})  # T disagrees with sample
    with pytest.raises(InputError, match=r"unet\.sample.*rank"):
        runner(**{**x, "sample": x["sample"][:, :, 0]})
    # the module itself names the input too (direct calls bypass the runner)
    with pytest.raises(InputError, match=r"unet\.low_res.*\(1, 3, 3, 8, 8\)"):
        tiny_model(**{**x, "low_res": x["low_res"][..., :4]})
    with pytest.raises(InputError, match=r"unet\.encoder_hidden_states.*32"):
        tiny_model(**{**x, "encoder_hidden_states": torch.randn(1, 5, 16)})


def test_config_rejects_unsupported_values(tiny_case):
    cfg = dict(tiny_case.meta["config"])
    with pytest.raises(ConfigError, match="temporal_module_config"):
        UNetVideoModel.from_config({**cfg, "temporal_module_config": {"attention_block_types": ["Temporal", ""]}})
    with pytest.raises(ConfigError, match="no_such_key"):
        UNetVideoModel.from_config({**cfg, "no_such_key": 1})
    with pytest.raises(ConfigError, match="up_block_types"):
        UNetVideoModel.from_config({**cfg, "up_block_types": ["UpBlock2D"] * 4})
    # keys starting with "_" are metadata
    assert isinstance(UNetVideoModel.from_config({**cfg, "_class_name": "UNetVideoModel"}), UNetVideoModel)


def test_fp16_runs_without_nan(tiny_model, tiny_case):
    """The release runs the U-Net in fp16: a small clip through the fp16 runner stays finite and
    close to fp32 (relative to the output range: fp16 has ~3 decimal digits). 16x16 keeps the
    deepest level at 2x2: GroupNorm over 1 pixel x 2 channels is ill-conditioned in any precision."""
    x = _inputs(b=1, t=2, h=16, w=16)
    ref = TorchBackend(precision="fp32").from_module(UNET, tiny_model)(**x)["noise_pred"]
    model16 = UNetVideoModel.from_config(tiny_case.meta["config"])
    model16.load_state_dict(tiny_case.weights())
    out = TorchBackend(precision="fp16").from_module(UNET, model16)(**x)["noise_pred"]
    assert model16.conv_in.weight.dtype == torch.float16
    assert torch.isfinite(out).all()
    assert (out - ref).abs().max() <= 2e-2 * ref.abs().max()
