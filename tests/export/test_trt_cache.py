"""Engine cache: keys, ONNX fingerprints, manifest validation (pure: no TensorRT needed)."""

import inspect
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from uavrt.errors import EngineMismatch
from uavrt.export import cache

BASE = dict(network="unet", precision="fp16", onnx_sha256="ab" * 32,
            profiles={"sample": ((2, 4, 1, 32, 32), (2, 4, 8, 64, 64), (2, 4, 8, 96, 96))},
            tensorrt_version="11.0.0.1", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0",
            optimization_level=3, version_compatible=False, hardware_compatibility="none",
            workspace_bytes=None, tf32=False)

CHANGED = dict(network="raft", precision="fp32", onnx_sha256="cd" * 32,
               profiles={"sample": ((2, 4, 1, 32, 32), (2, 4, 8, 64, 64), (2, 4, 8, 96, 128))},
               tensorrt_version="11.0.0.2", gpu_name="NVIDIA H200", compute_capability="9.1",
               optimization_level=5, version_compatible=True, hardware_compatibility="ampere_plus",
               workspace_bytes=8 << 30, tf32=True)


def test_every_field_is_tested():
    params = set(inspect.signature(cache.key_fields).parameters)
    assert params == set(BASE) == set(CHANGED)


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_changing_any_field_changes_the_key(field):
    base = cache.key_fields(**BASE)
    changed = cache.key_fields(**{**BASE, field: CHANGED[field]})
    assert cache.cache_key(changed) != cache.cache_key(base)
    diffs = cache.field_differences(base, changed)
    assert len(diffs) == 1 and diffs[0].startswith(f"{field}:")


def test_key_is_stable_across_json_round_trip():
    f = cache.key_fields(**BASE)
    assert cache.cache_key(json.loads(json.dumps(f))) == cache.cache_key(f)
    assert cache.cache_key(cache.key_fields(**dict(BASE))) == cache.cache_key(f)


def _graph(path, weight: np.ndarray, external: bool, metadata=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    w = numpy_helper.from_array(weight, "w")
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    for k, v in (metadata or {}).items():
        m.metadata_props.add(key=k, value=v)
    onnx.save_model(m, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=0)


def test_onnx_fingerprint_covers_external_data(tmp_path):
    path = tmp_path / "unet.fp16.onnx"
    _graph(path, np.arange(4, dtype=np.float32), external=True, metadata={"uavrt.precision": "fp16"})
    fp = cache.onnx_fingerprint(path)
    assert fp.files == ("unet.fp16.onnx", "unet.fp16.onnx.data")
    assert fp.metadata == {"uavrt.precision": "fp16"}
    data = tmp_path / "unet.fp16.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[0] ^= 1  # same size, different weights: must change the fingerprint
    data.write_bytes(bytes(raw))
    assert cache.onnx_fingerprint(path).sha256 != fp.sha256
    data.unlink()
    with pytest.raises(EngineMismatch, match="external data"):
        cache.onnx_fingerprint(path)


def test_onnx_fingerprint_embedded(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    _graph(a, np.zeros(4, np.float32), external=False)
    _graph(b, np.ones(4, np.float32), external=False)
    fa, fb = cache.onnx_fingerprint(a), cache.onnx_fingerprint(b)
    assert fa.files == ("a.onnx",) and fa.sha256 != fb.sha256


def _cached_engine(tmp_path, content=b"plan-bytes" * 10):
    fields = cache.key_fields(**BASE)
    plan = tmp_path / cache.plan_filename("unet", "fp16")
    plan.write_bytes(content)
    entry = cache.make_entry(fields, plan, build_seconds=1.5, onnx_file="unet.fp16.onnx",
                             onnx_metadata={"weights": "x"}, built_at="2026-01-01T00:00:00+00:00")
    cache.write_entry(tmp_path, "unet.fp16", entry)
    return fields, plan


def test_manifest_round_trip_and_reuse(tmp_path):
    fields, plan = _cached_engine(tmp_path)
    manifest = json.loads((tmp_path / cache.MANIFEST).read_text())
    e = manifest["engines"]["unet.fp16"]
    assert e["file"] == plan.name and e["sha256"] == cache.sha256_file(plan)
    assert e["key"] == cache.cache_key(fields) and e["fields"] == fields and e["build_seconds"] == 1.5
    entry, reasons = cache.lookup(tmp_path, "unet.fp16", fields)
    assert entry == e and reasons == []
    assert not list(tmp_path.glob(".*partial*"))  # atomic write left nothing behind


def test_nothing_cached(tmp_path):
    assert cache.lookup(tmp_path, "unet.fp16", cache.key_fields(**BASE)) == (None, [])


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_stale_entry_is_never_reused(tmp_path, field):
    _cached_engine(tmp_path)
    entry, reasons = cache.lookup(tmp_path, "unet.fp16", cache.key_fields(**{**BASE, field: CHANGED[field]}))
    assert entry is None and len(reasons) == 1 and reasons[0].startswith(f"{field}:")


def test_modified_plan_of_same_size_is_refused(tmp_path):
    fields, plan = _cached_engine(tmp_path)
    raw = bytearray(plan.read_bytes())
    raw[3] ^= 0xFF
    plan.write_bytes(bytes(raw))  # same size, same name: only the hash can tell
    entry, reasons = cache.lookup(tmp_path, "unet.fp16", fields)
    assert entry is None and "modified or replaced" in reasons[0]
    with pytest.raises(EngineMismatch, match="sha256"):
        cache.check_plan_file(tmp_path, "unet.fp16", cache.load_manifest(tmp_path)["engines"]["unet.fp16"])


def test_missing_plan_file_is_refused(tmp_path):
    fields, plan = _cached_engine(tmp_path)
    plan.unlink()
    entry, reasons = cache.lookup(tmp_path, "unet.fp16", fields)
    assert entry is None and "missing" in reasons[0]


def test_tampered_key_is_refused(tmp_path):
    fields, _ = _cached_engine(tmp_path)
    m = json.loads((tmp_path / cache.MANIFEST).read_text())
    m["engines"]["unet.fp16"]["key"] = "0" * 64
    (tmp_path / cache.MANIFEST).write_text(json.dumps(m))
    entry, reasons = cache.lookup(tmp_path, "unet.fp16", fields)
    assert entry is None and reasons[0].startswith("key:")


def test_unreadable_or_foreign_manifest(tmp_path):
    (tmp_path / cache.MANIFEST).write_text("{not json")
    with pytest.raises(EngineMismatch, match="not a readable"):
        cache.load_manifest(tmp_path)
    (tmp_path / cache.MANIFEST).write_text(json.dumps({"schema": 99, "engines": {}}))
    with pytest.raises(EngineMismatch, match="schema 99"):
        cache.load_manifest(tmp_path)


def test_second_entry_keeps_the_first(tmp_path):
    _cached_engine(tmp_path)
    fields = cache.key_fields(**{**BASE, "network": "raft"})
    plan = tmp_path / cache.plan_filename("raft", "fp16")
    plan.write_bytes(b"raft")
    cache.write_entry(tmp_path, "raft.fp16", cache.make_entry(fields, plan, build_seconds=0.1, onnx_file="r",
                                                              onnx_metadata={}, built_at="t"))
    assert set(cache.load_manifest(tmp_path)["engines"]) == {"unet.fp16", "raft.fp16"}
