"""`uavrt bench` end to end on the demo model (CPU): JSON schema, stage coverage, table, chart,
and a backend that cannot run here (TensorRT) reported instead of crashing the run."""

import json

import pytest

from uavrt.commands.bench import main
from uavrt.bench.report import SCHEMA, STAT_KEYS
from uavrt.commands import build_parser

TINY = ["--demo", "--size", "16x16", "--frames", "4", "--steps", "1", "--reps", "2", "--warmup", "1", "-q"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = TINY + ["--backends", "torch,tensorrt", "--engines", str(out / "no-engines"),
                   "--json", str(out / "r.jsonl"), "--plot", str(out / "r.png"), "--markdown", str(out / "r.md")]
    rc = main(argv)
    lines = [json.loads(x) for x in (out / "r.jsonl").read_text().splitlines()]
    return rc, lines, out


def test_exit_code_and_lines(bench_run):
    rc, lines, _ = bench_run
    assert rc == 0  # torch ran; the unavailable backend is reported, not fatal
    assert [r["backend"] for r in lines] == ["torch", "tensorrt"]
    assert [r["status"] for r in lines] == ["ok", "unavailable"]
    assert "TensorRT" in lines[1]["error"]


def test_schema(bench_run):
    _, lines, _ = bench_run
    r = lines[0]
    missing = [k for k in SCHEMA if k not in r]
    assert not missing, missing
    for stat in [r["wall_s"], *r["stages"].values()]:
        assert set(STAT_KEYS) <= set(stat)
        assert 0 < stat["min_s"] <= stat["median_s"] <= stat["max_s"]
    assert {"video_decode", "text_encode", "unet", "vae_decode", "video_encode"} <= set(r["stages"])
    assert r["scenario"]["frames"] == 4 and r["scenario"]["height"] == 16 and r["scenario"]["guided"]
    assert r["env"]["cpu_model"] and r["env"]["cpu_logical_cores"] >= 1 and r["env"]["gpu"] is None
    assert r["fps"] == pytest.approx(4 / r["wall_s"]["median_s"])
    assert r["peak_host_mb"] > 50
    # unknowable on a CPU: null, each with its reason
    assert r["peak_gpu_mb"] is None and "cpu" in r["peak_gpu_why"]
    assert r["mfu"] is None and r["mfu_why"]
    # FLOPs are counted: batch 2 (guidance), one call per step for 4 frames (one clip)
    assert r["unet_calls_per_run"] == 1 and r["unet_call_shapes"] == ["[2, 4, 16, 16, 77]"]
    assert r["unet_flops_per_call"] > 1e8
    assert r["achieved_tflops"] == pytest.approx(r["unet_flops_per_run"] / r["stages"]["unet"]["median_s"] / 1e12)
    assert r["vs_first"]["backend"] == "torch" and r["vs_first"]["wall_ratio"] == pytest.approx(1.0)
    assert "tiny demo model" in r["model"]["note"]


def test_stages_cover_the_wall_time(bench_run):
    _, lines, _ = bench_run
    r = lines[0]
    covered = sum(s["median_s"] for s in r["stages"].values())
    assert covered == pytest.approx(r["wall_s"]["median_s"], rel=0.10)


def test_table_and_plot(bench_run, capsys):
    _, lines, out = bench_run
    md = (out / "r.md").read_text()
    assert "| 16x16 4f 1st cfg6 | torch fp32 |" in md
    assert "AMD" in md or lines[0]["env"]["cpu_model"] in md
    assert "tensorrt" in md  # the skip reason is listed under the table
    png = (out / "r.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_bench_is_a_uavrt_subcommand():
    a = build_parser().parse_args(["bench"] + TINY + ["--backends", "torch,onnxruntime"])
    assert a.func.__name__ == "run_bench" and a.backends == "torch,onnxruntime" and a.demo


def test_bad_flags_name_the_parameter(capsys):
    assert main(["--demo", "--random-weights"]) == 2
    assert "--demo/--random-weights/--weights" in capsys.readouterr().err
    assert main(["--demo", "--backends", "torch,cudnn"]) == 2
    assert "--backends" in capsys.readouterr().err
    # propagation needs RAFT-sized frames: refused before any model is loaded
    assert main(["--demo", "--size", "32x32", "--propagation", "on"]) == 2
    assert "size with propagation" in capsys.readouterr().err
