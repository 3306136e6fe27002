"""The packaged trained demo model: files, hashes, loading, the random variant, reproducibility."""

import hashlib
import json

import torch

from uavrt.models.demo import (DEMO_NOTICE, TRAINED_FILES, TRAINED_UNET, TRAINED_VAE_3D, demo_weights_dir,
                               trained_dir, trained_record)
from uavrt.models.release import load_network

MAX_BYTES = 3_000_000  # "small": the shipped files together


def test_shipped_files_match_their_recorded_sha256_and_are_small():
    rec = trained_record()
    assert set(rec["files"]) == set(TRAINED_FILES)
    total = 0
    for rel, want in rec["files"].items():
        data = trained_dir().joinpath(rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == want, rel
        total += len(data)
    assert total == rec["size_bytes"] and total < MAX_BYTES
    # the recorded settings are what the trainer runs by default (so the command reproduces them)
    from dataclasses import asdict
    from uavrt.tools.train_demo import Settings
    assert rec["settings"] == asdict(Settings())
    assert json.loads(trained_dir().joinpath("unet/unet_video_config.json").read_text()) == TRAINED_UNET
    assert json.loads(trained_dir().joinpath("vae/vae_3d_config.json").read_text()) == TRAINED_VAE_3D


def test_demo_folder_loads_the_trained_networks_through_the_release_loader():
    root = demo_weights_dir(with_raft=False)
    unet = load_network(root, "unet")
    assert unet.path.suffix == ".safetensors"
    assert unet.weights_hash == trained_record()["files"]["unet/unet_video.safetensors"]
    assert load_network(root, "vae_3d").weights_hash == trained_record()["files"]["vae/vae_3d.safetensors"]
    assert not (root / "unet" / "unet_video.bin").exists()
    assert "trained" in DEMO_NOTICE and "synthetic" in DEMO_NOTICE and "soft" in DEMO_NOTICE


def test_random_demo_model_is_still_available():
    random_root = demo_weights_dir(with_raft=False, trained=False)
    assert (random_root / "unet" / "unet_video.bin").is_file()
    assert json.loads((random_root / "DEMO_MODEL.json").read_text()).get("trained") is None
    a = load_network(random_root, "unet").module
    assert a.config.block_out_channels != tuple(TRAINED_UNET["block_out_channels"])


def _tiny_run(seed):
    from uavrt.tools.train_demo import Settings, train
    s = Settings(seed=seed, clips=2, frames=4, size=32, vae_steps=2, vae_batch=1, vae_crop=16, unet_steps=2,
                 unet_batch=1, unet_frames=3, warmup=1, log_every=1)
    return train(s, demo_weights_dir(with_raft=False, trained=False))


def test_training_is_deterministic_from_its_seed(capsys):
    """Bit-exact across CPUs is not promised (vector kernels round differently); on one machine
    the same seed must give identical weights, another seed other weights."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        a, b, c = _tiny_run(0), _tiny_run(0), _tiny_run(1)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    for net in ("unet", "vae_3d"):
        assert a[net].keys() == b[net].keys()
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
        assert not all(torch.equal(a[net][k], c[net][k]) for k in a[net]), net
    assert "unet step" in capsys.readouterr().out  # the loss curve is printed
