"""Temporal VAE decoders (vae_3d, vae_video): checkpoint layout, golden parity, input errors."""

import json
from pathlib import Path

import pytest
import torch

from uavrt.errors import ConfigError, InputError
from uavrt.spec import VAE_3D, VAE_VIDEO
from uavrt.golden import Context, load_cases, run_case
from uavrt.models.vae import DECODER_PREFIXES, ENCODER_PREFIXES, VideoVAEDecoder
from uavrt.models.vae.ops import to_frames, to_video, video_group_norm
from uavrt.runtime.torch_backend import TorchBackend

CONFIGS = Path(__file__).resolve().parents[2] / "uavrt" / "models" / "configs"
VARIANTS = ("vae_3d", "vae_video")


def _release_config(name):
    return json.loads((CONFIGS / f"{name}.json").read_text())


def _tiny_config(golden_dir, name):
    case = "vae3d_decode" if name == "vae_3d" else "vaevideo_decode"
    return json.loads((golden_dir / f"{case}.json").read_text())["config"]


def _read_manifest(golden_dir, name):
    rows = {}
    lines = (golden_dir / "manifests" / f"{name}.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["name", "shape", "dtype"]
    for line in lines[1:]:
        if line.strip():
            key, shape, _dtype = line.split("\t")
            rows[key] = tuple(json.loads(shape))
    return rows


@pytest.fixture(scope="module")
def tiny_models(golden_dir):
    torch.manual_seed(1)
    return {name: VideoVAEDecoder.from_config(_tiny_config(golden_dir, name)).eval() for name in VARIANTS}


# --- checkpoint layout (full release configs, meta device) ------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_matches_release_manifest(golden_dir, name):
    with torch.device("meta"):
        model = VideoVAEDecoder.from_config(_release_config(name))
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    manifest = _read_manifest(golden_dir, name)
    want = {k: s for k, s in manifest.items() if k.startswith(DECODER_PREFIXES)}
    assert sorted(set(got) - set(want)) == [] and sorted(set(want) - set(got)) == []
    assert {k: s for k, s in got.items() if s != want[k]} == {}
    # the two prefix sets partition the release checkpoint (the loader drops the encoder ones)
    assert all(k.startswith(DECODER_PREFIXES + ENCODER_PREFIXES) for k in manifest)
    summary = json.loads((golden_dir / "manifests" / "summary.json").read_text())["models"][name]
    assert len(got) == summary["decoder_plus_post_quant_entries"]
    assert sum(v.numel() for v in model.state_dict().values()) == summary["decoder_plus_post_quant_numel"]
    assert model.variant == name and model.spec is {"vae_3d": VAE_3D, "vae_video": VAE_VIDEO}[name]


# --- golden parity (official code, fp32 CPU) ----------------------------------------------------

@pytest.mark.parametrize("case_name", ["vae3d_decode", "vaevideo_decode"])
def test_golden_case(golden_dir, case_name):
    (case,) = load_cases(golden_dir, only=[case_name])
    results = run_case(case, Context(backend=TorchBackend()))
    assert {r.tensor for r in results} == {"sample", "sample_clamped"}
    for r in results:
        assert r.passed, r.line()


# --- building blocks and invariants -------------------------------------------------------------

def test_video_group_norm_equals_groupnorm_on_the_5d_video():
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(4, 16, eps=1e-6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2 * 3, 16, 5, 7) * 3 + 1  # [B*T, C, H, W], B=2, T=3
    ref = to_frames(norm(to_video(x, 3)))  # official: GroupNorm on [B, C, T, H, W]
    torch.testing.assert_close(video_group_norm(x, 3, norm), ref, rtol=0, atol=1e-5)


def test_batch_rows_are_decoded_independently(tiny_models):
    # golden cases have B=1: this pins the b-major (b t) frame order and per-row GroupNorm stats
    model = tiny_models["vae_video"]
    torch.manual_seed(2)
    z, lr = torch.randn(2, 4, 2, 4, 6) * 10, torch.rand(2, 3, 2, 4, 6) * 2 - 1
    with torch.no_grad():
        both = model(z, lr, torch.tensor(1.0))
        rows = torch.cat([model(z[i:i + 1], lr[i:i + 1], torch.tensor(1.0)) for i in range(2)])
    assert both.shape == (2, 3, 2, 16, 24)
    torch.testing.assert_close(both, rows, rtol=0, atol=1e-5)


def test_w_lr_scales_the_low_res_condition(tiny_models):
    # one call decodes the same latents with two different low-res videos (rows are independent)
    model = tiny_models["vae_video"]
    torch.manual_seed(3)
    z = (torch.randn(1, 4, 2, 4, 4) * 10).expand(2, -1, -1, -1, -1)
    lr = torch.rand(2, 3, 2, 4, 4) * 2 - 1
    with torch.no_grad():
        off, on = model(z, lr, torch.tensor(0.0)), model(z, lr, 1.0)
    torch.testing.assert_close(off[0], off[1], rtol=0, atol=0)  # w_lr=0 switches the condition off
    assert (on[0] - on[1]).abs().max() > 1e-3


# --- errors at the boundary -----------------------------------------------------------------------

def test_vae_video_without_low_res_names_the_input(tiny_models):
    with pytest.raises(InputError, match=r"vae_video\.low_res: missing"):
        tiny_models["vae_video"](torch.randn(1, 4, 2, 8, 8))


@pytest.mark.parametrize("shape", [(1, 3, 2, 4, 8), (1, 1, 2, 8, 8), (1, 3, 3, 8, 8), (3, 2, 8, 8)])
def test_vae_video_low_res_shape_mismatch(tiny_models, shape):
    with pytest.raises(InputError, match=r"low_res: shape .* expected \(1, 3, 2, 8, 8\)"):
        tiny_models["vae_video"](torch.randn(1, 4, 2, 8, 8), torch.zeros(shape), 1.0)


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("shape", [(1, 3, 2, 8, 8), (4, 8, 8), (1, 4, 2, 8, 8, 1)])
def test_wrong_latent_shape(tiny_models, name, shape):
    with pytest.raises(InputError, match=rf"{name}\.latents: shape .* expected \[B, 4, T, h, w\]"):
        tiny_models[name](torch.randn(shape), torch.zeros(1, 3, 2, 8, 8), 1.0)


def test_vae_3d_rejects_a_low_res_condition(tiny_models):
    with pytest.raises(InputError, match=r"vae_3d\.low_res"):
        tiny_models["vae_3d"](torch.randn(1, 4, 2, 8, 8), torch.zeros(1, 3, 2, 8, 8))


def test_runner_rejects_missing_low_res(tiny_models):
    runner = TorchBackend().from_module(VAE_VIDEO, tiny_models["vae_video"])
    with pytest.raises(InputError, match="low_res"):
        runner(latents=torch.randn(1, 4, 2, 8, 8), w_lr=torch.tensor(1.0))


@pytest.mark.parametrize("change, param", [
    ({"up_block_types": ["UpDecoderBlock2D"] * 3}, "up_block_types"),
    ({"up_block_types": ["UpDecoderBlock3D"] * 2}, "up_block_types"),
    ({"act_fn": "gelu"}, "act_fn"),
    ({"block_out_channels": [32, 48, 64]}, "block_out_channels"),
    ({"condition_channels": 40}, "condition_channels"),
    ({"use_temporal_blocks": True}, "use_temporal_blocks"),
])
def test_config_errors_name_the_parameter(golden_dir, change, param):
    cfg = {**_tiny_config(golden_dir, "vae_video"), **change}
    with pytest.raises(ConfigError, match=param):
        VideoVAEDecoder.from_config(cfg)


# --- export (slow: torch.onnx dynamo export of a reduced decoder takes 1-2 min on 2 cores) -----

@pytest.mark.slow
def test_onnx_export_dynamic_shapes_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    cfg = {"block_out_channels": [32, 32], "up_block_types": ["UpDecoderBlock3D_plus"] * 2, "layers_per_block": 1,
           "condition_img": True, "condition_channels": 32}
    torch.manual_seed(4)
    model = VideoVAEDecoder.from_config(cfg).eval()
    names = ("latents", "low_res", "w_lr")
    dims = {n: torch.export.Dim(n, min=1, max=64) for n in "BTHW"}
    video_dims = {0: dims["B"], 2: dims["T"], 3: dims["H"], 4: dims["W"]}
    example = (torch.randn(1, 4, 3, 8, 8), torch.rand(1, 3, 3, 8, 8), torch.tensor(1.0))
    prog = torch.onnx.export(model, (), kwargs=dict(zip(names, example)), dynamo=True, opset_version=21,
                             dynamic_shapes={"latents": video_dims, "low_res": video_dims, "w_lr": {}},
                             input_names=list(names), output_names=["video"])
    path = tmp_path / "vae_video.onnx"
    prog.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = (torch.randn(2, 4, 5, 6, 10) * 10, torch.rand(2, 3, 5, 6, 10) * 2 - 1, torch.tensor(0.7))
    with torch.no_grad():
        ref = model(*x)
    (got,) = session.run(None, {n: t.numpy() for n, t in zip(names, x)})
    assert got.shape == (2, 3, 5, 12, 20)  # two blocks: one x2 upsampling
    torch.testing.assert_close(torch.from_numpy(got), ref, rtol=0, atol=1e-4)
