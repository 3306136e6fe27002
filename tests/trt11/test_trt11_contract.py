"""The real TensorRT 11.4 Python API as a contract, on a CPU machine (issue 10, item 4).

The real compiled bindings (`tensorrt-cu13-bindings==11.4.0.106`) and the `tensorrt` package of
the `tensorrt-cu13==11.4.0.106` sdist are imported in SUBPROCESSES (trt11_driver.py) against stub
libraries compiled here (trt11_stubs.py); never in this process. From the real module's surface the
driver checks uavrt's source statically (trt11_uses.py) and runs the engine build (through the real
Polygraphy) and the TensorRT runtime path against strict fakes generated from it (trt11_fake.py).
`.ci/trt11_deps` downloads the packages into .ci/trt11 (or $UAVRT_TRT11_DIR); without them
every test here skips, saying so.
"""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
DEPS = Path(os.environ.get("UAVRT_TRT11_DIR", REPO / ".ci" / "trt11"))
SDIST = DEPS / "tensorrt_cu13-11.4.0.106.tar.gz"
BINDINGS = DEPS / "site"
POLYGRAPHY_049 = DEPS / "polygraphy-0.49"
POLYGRAPHY_MIN = DEPS / "polygraphy-0.50.3"  # the lowest setup.py allows

pytestmark = pytest.mark.trt11_contract

PHASES = {"main": "main", "inject_fp16": "inject:builder_flag_fp16", "inject_layer_precision": "inject:layer_precision",
          "inject_execute_v2": "inject:execute_async_v2", "inject_keyword": "inject:wrong_keyword",
          "polygraphy_049": f"polygraphy:{POLYGRAPHY_049}", "polygraphy_min": f"polygraphy:{POLYGRAPHY_MIN}"}
OPTIONAL = {"polygraphy_049": POLYGRAPHY_049, "polygraphy_min": POLYGRAPHY_MIN}


def _extract_tensorrt_package(sdist: Path, site: Path):
    """Only the sdist's `tensorrt/` Python package (it re-exports tensorrt_bindings)."""
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and "/tensorrt/" in f"/{m.name}"
                   and m.name.split("/", 1)[-1].startswith("tensorrt/")]
        for m in members:
            m.name = m.name.split("/", 1)[1]
        try:
            tar.extractall(site, members=members, filter="data")
        except TypeError:  # Python without extraction filters (< 3.10.12 / 3.11.4): plain files only
            tar.extractall(site, members=members)


@pytest.fixture(scope="module")
def contract(tmp_path_factory):
    if not (BINDINGS / "tensorrt_bindings").is_dir() or not SDIST.is_file():
        pytest.skip(f"TensorRT 11.4 contract packages not in {DEPS} (run .ci/trt11_deps: it downloads "
                    "tensorrt-cu13-bindings==11.4.0.106 and the tensorrt-cu13==11.4.0.106 sdist)")
    from trt11_stubs import build_stubs, compiler

    if compiler() is None:
        pytest.skip("no C compiler (cc/gcc/clang) to build the stub TensorRT libraries")
    tmp = tmp_path_factory.mktemp("trt11")
    stubs = build_stubs(tmp / "stubs")
    _extract_tensorrt_package(SDIST, tmp / "site")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_PRELOAD")}
    env.update(LD_LIBRARY_PATH=f"{stubs}:{env.get('LD_LIBRARY_PATH', '')}".rstrip(":"),
               PYTHONPATH=f"{tmp / 'site'}:{BINDINGS}", PYTHONDONTWRITEBYTECODE="1")
    phases = {k: v for k, v in PHASES.items() if k not in OPTIONAL or (OPTIONAL[k] / "polygraphy").is_dir()}
    out = tmp / "contract.json"
    p = subprocess.run([sys.executable, str(HERE / "trt11_driver.py"), str(out), str(REPO), *phases.values()],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and out.exists(), f"contract driver failed:\n{(p.stdout + p.stderr)[-3000:]}"
    raw = json.loads(out.read_text())
    return {k: raw[v] for k, v in phases.items()}


def test_surface_is_read_from_the_real_11_4_bindings(contract):
    r = contract["main"]
    assert r["version"] == "11.4.0.106"
    assert Path(r["module_file"]).resolve().is_relative_to(BINDINGS.resolve())  # not a fake, not a system TensorRT
    assert r["surface_counts"]["classes"] == 137 and r["surface_counts"]["enums"] >= 64


def test_every_tensorrt_use_in_uavrt_exists_in_11_4(contract):
    s = contract["main"]["static"]
    assert s["problems"] == []
    for use in ("uavrt/runtime/trt_backend.py: self.context.execute_async_v3",
                "uavrt/runtime/trt_backend.py: trt.ExecutionContextAllocationStrategy.USER_MANAGED",
                "uavrt/runtime/trt_backend.py: self.runtime.engine_host_code_allowed",
                "uavrt/export/trt.py: trt.MemoryPoolType.WORKSPACE"):
        assert use in s["uses"]


def test_roles_table_matches_the_code(contract):
    # every receiver the static check types as a TensorRT object is used in the code (no stale rows)
    s = contract["main"]["static"]
    assert s["roles"] == s["roles_seen"]


def test_engine_build_runs_through_polygraphy_against_the_strict_fake(contract):
    b = contract["main"]["build"]
    assert b["ok"], b.get("traceback")
    assert b["polygraphy"] >= "0.50.3"
    plan = b["plan"]
    assert [t[:3] for t in plan["io"]] == [["image1", "INPUT", "FLOAT"], ["image2", "INPUT", "FLOAT"],
                                           ["flow_low", "OUTPUT", "FLOAT"], ["flow_up", "OUTPUT", "FLOAT"]]
    assert plan["profiles"] == [{n: [[1, 3, 128, 128], [2, 3, 128, 128], [2, 3, 256, 256]] for n in ("image1", "image2")}]
    assert plan["config"]["builder_optimization_level"] == 1
    assert plan["config"]["hardware_compatibility_level"] == "AMPERE_PLUS"
    for call in ("IBuilderConfig.set_memory_pool_limit", "IBuilderConfig.set_flag", "OnnxParser.parse_from_file",
                 "Builder.build_serialized_network", "ITimingCache.serialize"):
        assert call in b["calls"]
    assert b["timing_cache_written"]
    u = b["plans"]["unet"]
    assert [t[:3] for t in u["io"]] == [["sample", "INPUT", "HALF"], ["timestep", "INPUT", "INT64"],
                                        ["low_res", "INPUT", "HALF"], ["encoder_hidden_states", "INPUT", "HALF"],
                                        ["class_labels", "INPUT", "INT64"], ["noise_pred", "OUTPUT", "HALF"]]
    assert u["profiles"][0]["sample"] == [[2, 4, 1, 16, 16], [2, 4, 4, 32, 32], [2, 4, 4, 64, 64]]


def test_runtime_path_against_the_strict_fake(contract):
    rt = contract["main"]["runtime"]
    assert rt["ok"], rt.get("traceback")
    assert rt["strategy"] == "USER_MANAGED" and rt["device_memory"][1] == 1 << 20
    u = rt["runs"]["unet"]
    # fp16 engine I/O: floats fed as float16, int64 as int64, the fp16 output returned as float32;
    # the fake engine copied sample's fp16 bits to noise_pred through the bound addresses
    assert u["input_dtypes"] == {"sample": "torch.float16", "timestep": "torch.int64", "low_res": "torch.float16",
                                 "encoder_hidden_states": "torch.float16", "class_labels": "torch.int64"}
    assert u["dtype"] == "torch.float32" and u["err"] == 0.0
    assert u["shared_memory"] and u["contexts"] == 2  # one activation buffer for both engines
    for run in (rt["runs"]["default_stream"], rt["runs"]["side_stream"]):
        # the fake engine computed flow_up = image1 - image2 through the bound addresses
        assert run["flow_up_err"] == 0.0 and run["addresses_are_outputs"]
        assert run["shapes"] == {"flow_low": [2, 2, 16, 17], "flow_up": [2, 2, 128, 136]}


def test_execute_async_v3_never_runs_on_the_default_stream(contract):
    runs = contract["main"]["runtime"]["runs"]
    side = runs["side_stream"]  # the caller made a stream current: TensorRT runs on exactly it
    assert side["handle"] == side["caller"] != 0 and side["events"] == []
    d = runs["default_stream"]  # torch's default stream (handle 0): the backend's own stream, ordered
    assert d["caller"] == 0 and d["handle"] not in (0, 1, 2)
    assert d["events"] == [["wait", d["handle"], 0], ["wait", 0, d["handle"]]]


@pytest.mark.parametrize("run, static, error", [
    ("inject_fp16", "enum BuilderFlag has no member 'FP16'", "enum BuilderFlag has no member 'FP16'"),
    ("inject_layer_precision", None, "ILayer object has no attribute 'precision'")])
def test_a_removed_builder_api_fails_the_contract(contract, run, static, error):
    r = contract[run]
    if static:
        assert any(static in p for p in r["static"]["problems"]), r["static"]["problems"]
    assert not r["build"]["ok"] and error in r["build"]["error"] and "AttributeError" in r["build"]["error"]
    assert contract["main"]["build"]["ok"]  # the same run without the injection passes


@pytest.mark.parametrize("run, static, error", [
    ("inject_execute_v2", "IExecutionContext has no attribute 'execute_async_v2'",
     "AttributeError: TensorRT 11.4.0.106: IExecutionContext object has no attribute 'execute_async_v2'"),
    ("inject_keyword", "set_input_shape(1 positional, dims=) fits no signature",
     "TypeError: TensorRT 11.4.0.106: IExecutionContext.set_input_shape(): incompatible function arguments")])
def test_a_wrong_runtime_call_fails_the_contract(contract, run, static, error):
    r = contract[run]
    assert any(static in p for p in r["static"]["problems"]), r["static"]["problems"]
    assert r["build"]["ok"] and not r["runtime"]["ok"] and error in r["runtime"]["error"], r["runtime"]
    assert contract["main"]["runtime"]["ok"]


def test_polygraphy_049_is_caught_reading_precision_is_set(contract):
    if "polygraphy_049" not in contract:
        pytest.skip(f"polygraphy 0.49.26 not in {POLYGRAPHY_049} (run .ci/trt11_deps)")
    b = contract["polygraphy_049"]["build"]
    assert not b["ok"] and "precision_is_set" in b["error"], b
    assert "polygraphy/backend/trt/config.py" in b["traceback"]


def test_lowest_allowed_polygraphy_builds_and_setup_py_asks_for_it(contract):
    if "polygraphy_min" not in contract:
        pytest.skip(f"polygraphy 0.50.3 not in {POLYGRAPHY_MIN} (run .ci/trt11_deps)")
    b = contract["polygraphy_min"]["build"]
    assert b["ok"] and b["polygraphy"] == "0.50.3", b.get("traceback")
    setup = (REPO / "setup.py").read_text()
    assert '"polygraphy>=0.49"' not in setup and setup.count('"polygraphy>=0.50.3"') == 3  # onnx, onnx-gpu, trt


def test_info_never_reports_the_stub_libraries_as_tensorrt(contract):
    info = contract["main"]["info"]
    assert info["tensorrt"]["version"] == "11.4.0.106"  # the bindings import...
    assert "stub library, not TensorRT" in info["tensorrt"]["library_problem"]
    ok, why = info["usable_with_a_gpu"]  # ...but even with a GPU it is not a usable TensorRT
    assert not ok and "not backed by a real TensorRT library" in why
    # and the library's entry points (build_engines, TrtBackend) refuse it at once, saying why
    assert info["require_tensorrt"].startswith("BackendUnavailable: the tensorrt 11.4.0.106 Python bindings "
                                               "are not backed by a real TensorRT library")
