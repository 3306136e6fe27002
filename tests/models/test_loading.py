"""Loading the release layout: the real loader on files the tests write, and every refusal."""

import json
import shutil

import pytest
import torch

from uavrt.errors import OutputExistsError, WeightsError
from uavrt.models.convert import convert_weights
from uavrt.models.demo import write_demo_weights
from uavrt.models.release import load_network


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_demo_weights(tmp_path_factory.mktemp("w") / "weights", seed=3, with_raft=True)


@pytest.fixture
def weights(release, tmp_path):
    d = tmp_path / "weights"
    shutil.copytree(release, d)
    return d


def test_release_layout_loads_every_network(release):
    for net in ("unet", "vae_3d", "vae_video", "raft"):
        loaded = load_network(release, net)
        assert len(loaded.weights_hash) == 64 and loaded.path.exists()
    raft = load_network(release, "raft")  # 'module.' prefix (DataParallel) is stripped
    assert not any(k.startswith("module.") for k in raft.module.state_dict())


def test_missing_file_names_file_and_layout(weights):
    (weights / "unet" / "unet_video.bin").unlink()
    with pytest.raises(WeightsError, match=r"unet_video\.(safetensors|bin).*release layout"):
        load_network(weights, "unet")
    (weights / "vae" / "vae_3d_config.json").unlink()
    with pytest.raises(WeightsError, match="vae_3d_config.json"):
        load_network(weights, "vae_3d")


def test_missing_and_unexpected_keys_are_named_with_counts(weights):
    p = weights / "unet" / "unet_video.bin"
    sd = torch.load(p, weights_only=True)
    dropped = sorted(sd)[:7]
    for k in dropped:
        del sd[k]
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, p)
    with pytest.raises(WeightsError) as e:
        load_network(weights, "unet")
    msg = str(e.value)
    assert "7 missing keys" in msg and dropped[0] in msg and "1 unexpected keys (extra.weight)" in msg


def test_shape_mismatch_names_key_expected_found(weights):
    p = weights / "vae" / "vae_3d.bin"
    sd = torch.load(p, weights_only=True)
    sd["post_quant_conv.weight"] = torch.zeros(4, 4, 3, 3, 3)
    torch.save(sd, p)
    with pytest.raises(WeightsError, match=r"'post_quant_conv.weight': expected \[4, 4, 1, 1(, 1)?\], found \[4, 4, 3, 3, 3\]"):
        load_network(weights, "vae_3d")


def test_config_of_wrong_class_is_refused(weights):
    p = weights / "unet" / "unet_video_config.json"
    cfg = json.loads(p.read_text())
    cfg["_class_name"] = "AutoencoderKLVideo"
    p.write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="class 'AutoencoderKLVideo', expected 'UNetVideoModel'"):
        load_network(weights, "unet")


def test_corrupt_checkpoint_is_named(weights):
    (weights / "vae" / "vae_video.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="vae_video.bin"):
        load_network(weights, "vae_video")


def test_vae_encoder_keys_of_a_release_checkpoint_are_ignored(weights):
    p = weights / "vae" / "vae_3d.bin"
    sd = torch.load(p, weights_only=True)
    sd["encoder.conv_in.weight"] = torch.zeros(32, 3, 3, 3, 3)
    sd["quant_conv.weight"] = torch.zeros(8, 8, 1, 1, 1)
    torch.save(sd, p)
    load_network(weights, "vae_3d")


def test_convert_to_safetensors_round_trip_and_fp16(release, tmp_path):
    out = tmp_path / "st"
    written = convert_weights(release, out)
    assert {p.name for p in written} >= {"unet_video.safetensors", "vae_3d.safetensors", "raft-things.safetensors"}
    a, b = load_network(release, "unet"), load_network(out, "unet")
    assert b.path.suffix == ".safetensors"
    for (k, x), (_, y) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
        assert torch.equal(x, y), k
    with pytest.raises(OutputExistsError):
        convert_weights(release, out)
    half = convert_weights(release, tmp_path / "fp16", fp16=True)
    from safetensors.torch import load_file
    assert all(v.dtype in (torch.float16, torch.int64) for v in load_file(str(half[0])).values())
    assert (tmp_path / "fp16" / "text_encoder").is_dir() and (tmp_path / "fp16" / "scheduler").is_dir()
    load_network(tmp_path / "fp16", "vae_video")  # fp16 files load (up-cast to fp32)
