"""`uavrt golden`: the runner on the public set, on a tampered copy, and on a new case."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from uavrt.commands import main

CHEAP = "scheduler,low_res_scheduler,color,propagation,warp_pieces,pipeline"


def test_public_cases_pass_through_cli(golden_dir, capsys):
    assert main(["golden", str(golden_dir), "--only", CHEAP]) == 0
    out = capsys.readouterr().out
    assert "pipeline_vae_video.video" in out and "max_abs=" in out and "atol=" in out
    assert out.strip().splitlines()[-1] == "9 passed, 0 failed"


def test_pipeline_and_propagation_with_kernel_propagator(golden_dir, capsys):
    pytest.importorskip("uavrt.kernels")
    rc = main(["golden", str(golden_dir), "--only", "propagation,warp_pieces,pipeline_vae_3d", "--propagator", "kernel"])
    assert rc == 0, capsys.readouterr().out


def _copy_case(golden_dir, dst, name):
    dst.mkdir()
    index = json.loads((golden_dir / "index.json").read_text())
    for suffix in (".json", ".safetensors"):
        shutil.copy(golden_dir / f"{name}{suffix}", dst / f"{name}{suffix}")
    index["cases"] = {name: index["cases"][name]}
    (dst / "index.json").write_text(json.dumps(index))


def test_a_wrong_expected_value_fails_with_exit_1(golden_dir, tmp_path, capsys):
    d = tmp_path / "g"
    _copy_case(golden_dir, d, "color_correction")
    t = load_file(str(d / "color_correction.safetensors"))
    t["expected.adain"] = t["expected.adain"] + 1e-3  # 50x its atol
    save_file(t, str(d / "color_correction.safetensors"))
    assert main(["golden", str(d)]) == 1
    out = capsys.readouterr().out
    assert "FAIL color_correction.adain" in out and out.strip().endswith("0 passed, 1 failed")


def test_runner_handles_other_shapes_and_seeds(golden_dir, tmp_path, capsys):
    """A case in the same format at a shape the public set lacks (unet 2x4x5x10x14, other seed):
    the runner derives everything from the files, nothing from the public shapes."""
    from uavrt.golden import Context, load_cases
    from uavrt.golden.unet import run as run_unet
    from uavrt.runtime.torch_backend import TorchBackend
    d = tmp_path / "g"
    _copy_case(golden_dir, d, "unet_16x16")
    shutil.copy(golden_dir / "weights_unet.safetensors", d)
    g = torch.Generator().manual_seed(99)
    t = {"inputs.sample": torch.randn(2, 4, 5, 10, 14, generator=g),
         "inputs.low_res": torch.randn(2, 3, 5, 10, 14, generator=g),
         "inputs.encoder_hidden_states": torch.randn(2, 7, 32, generator=g),
         "inputs.timestep": torch.tensor(250), "inputs.class_labels": torch.tensor([30, 300])}
    save_file(t, str(d / "unet_16x16.safetensors"))
    case = load_cases(d)[0]
    t["expected.sample"] = run_unet(case, Context(TorchBackend()))["sample"].contiguous()
    save_file(t, str(d / "unet_16x16.safetensors"))
    assert main(["golden", str(d)]) == 0
    assert "unet_16x16.sample" in capsys.readouterr().out


def test_missing_index_is_a_clear_error(tmp_path, capsys):
    assert main(["golden", str(tmp_path)]) == 2
    assert "index.json" in capsys.readouterr().err
