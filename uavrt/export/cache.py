"""The engine cache: which plan file was built from what, and whether it may be reused.

An engine is only valid for the exact inputs of its build: the ONNX graph (and its external
weights), the optimisation profiles, the TensorRT version, the GPU (name + compute capability)
and the build options. All of them form the *key fields*; their canonical-JSON sha256 is the
*key*. `manifest.json` beside the plans records, per engine, the key fields, the plan file, its
sha256 and the build time. Lookup compares every field and re-hashes the plan file: a stale or
tampered entry is never reused (and validity is never judged by file size or mtime).

Pure Python (hashlib/json + onnx for reading graph metadata): tested on CPU.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import EngineMismatch
from ..fsutil import atomic_path, sha256_file  # noqa: F401  (sha256_file: the manifest's hash)

MANIFEST = "manifest.json"
SCHEMA = 1
@dataclass(frozen=True)
class OnnxFingerprint:
    sha256: str  # over the graph file and every external-data file it references
    files: tuple  # file names that went into the hash (graph first)
    metadata: dict  # the graph's metadata_props


def onnx_fingerprint(path) -> OnnxFingerprint:
    """Hash an ONNX graph with its external data (weights may live in `<graph>.onnx.data`)."""
    import onnx

    path = Path(path)
    # the proto is read without external data: we only need the locations and metadata
    model = onnx.load(str(path), load_external_data=False)
    external = set()
    for tensor in _all_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    external.add(entry.value)
    h = hashlib.sha256()
    files = [path.name, *sorted(external)]
    for name in files:
        file = path if name == path.name else path.parent / name
        if not file.exists():
            raise EngineMismatch(f"{path}: external data file {str(file)!r} is missing")
        h.update(f"{name}\0{sha256_file(file)}\n".encode())
    metadata = {p.key: p.value for p in model.metadata_props}
    return OnnxFingerprint(h.hexdigest(), tuple(files), metadata)


def _all_tensors(graph):
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for g in attr.graphs:
                yield from _all_tensors(g)


def _canonical(value):
    """JSON-normal form: tuples become lists, so fields compare equal after a manifest round trip."""
    return json.loads(json.dumps(value, sort_keys=True))


def key_fields(*, network: str, precision: str, onnx_sha256: str, profiles: dict,
               tensorrt_version: str, gpu_name: str, compute_capability: str,
               optimization_level: int, version_compatible: bool, hardware_compatibility: str,
               workspace_bytes: int | None, tf32: bool = False) -> dict:
    """Everything that changes the engine a build produces (and nothing that does not)."""
    return _canonical({
        "schema": SCHEMA,
        "network": network,
        "precision": precision,
        "onnx_sha256": onnx_sha256,
        "profiles": {name: [list(s) for s in shapes] for name, shapes in profiles.items()},
        "tensorrt_version": tensorrt_version,
        "gpu_name": gpu_name,
        "compute_capability": compute_capability,
        "optimization_level": optimization_level,
        "version_compatible": bool(version_compatible),
        "hardware_compatibility": hardware_compatibility,
        "workspace_bytes": workspace_bytes,
        "tf32": bool(tf32),
    })


def cache_key(fields: dict) -> str:
    text = json.dumps(_canonical(fields), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def field_differences(expected: dict, found: dict) -> list:
    """Human-readable 'field: expected X, found Y' for every field that differs."""
    expected, found = _canonical(expected), _canonical(found)
    out = []
    for k in sorted(set(expected) | set(found)):
        if expected.get(k, "<absent>") != found.get(k, "<absent>"):
            e, f = expected.get(k, "<absent>"), found.get(k, "<absent>")
            out.append(f"{k}: expected {_short(e)}, found {_short(f)}")
    return out


def _short(v, n: int = 120) -> str:
    s = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
    return s if len(s) <= n else s[: n - 3] + "..."


# --- manifest ---------------------------------------------------------------------------------
def engine_name(network: str, precision: str) -> str:
    return f"{network}.{precision}"


def plan_filename(network: str, precision: str) -> str:
    return f"{engine_name(network, precision)}.plan"


def load_manifest(engines_dir) -> dict:
    path = Path(engines_dir) / MANIFEST
    if not path.exists():
        return {"schema": SCHEMA, "engines": {}}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise EngineMismatch(f"{path} is not a readable engine manifest ({e}); "
                             "delete it and rebuild the engines") from e
    if manifest.get("schema") != SCHEMA or not isinstance(manifest.get("engines"), dict):
        raise EngineMismatch(f"{path}: manifest schema {manifest.get('schema')!r} is not supported "
                             f"(expected {SCHEMA}); rebuild the engines")
    return manifest


def write_entry(engines_dir, name: str, entry: dict) -> Path:
    """Add/replace one engine's entry; the manifest is rewritten atomically (never half-written)."""
    manifest = load_manifest(engines_dir)
    manifest["engines"][name] = _canonical(entry)
    path = Path(engines_dir) / MANIFEST
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def make_entry(fields: dict, plan_path, *, build_seconds: float, onnx_file: str,
               onnx_metadata: dict, built_at: str) -> dict:
    plan_path = Path(plan_path)
    return {"key": cache_key(fields), "fields": fields, "file": plan_path.name,
            "sha256": sha256_file(plan_path), "build_seconds": round(build_seconds, 3),
            "built_at": built_at, "onnx_file": onnx_file, "onnx_metadata": onnx_metadata}


def check_plan_file(engines_dir, name: str, entry: dict) -> Path:
    """The entry's plan file, after checking it exists and hashes to the recorded sha256."""
    path = Path(engines_dir) / entry["file"]
    if not path.is_file():
        raise EngineMismatch(f"engine {name}: plan file {str(path)!r} listed in {MANIFEST} is "
                             "missing; rebuild it (uavrt export --trt)")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise EngineMismatch(f"engine {name}: plan file {str(path)!r} has sha256 {digest[:16]}..., "
                             f"the manifest records {entry['sha256'][:16]}...: it was modified or "
                             "replaced; rebuild it (uavrt export --trt --overwrite)")
    return path


def lookup(engines_dir, name: str, fields: dict) -> tuple:
    """(entry, []) when a valid engine for exactly these fields exists, else (None, reasons).

    reasons is empty when nothing is cached yet, and otherwise says why the cached engine cannot
    be reused (fields that differ, missing or modified plan file).
    """
    entry = load_manifest(engines_dir)["engines"].get(name)
    if entry is None:
        return None, []
    reasons = field_differences(fields, entry.get("fields", {}))
    if not reasons and entry.get("key") != cache_key(fields):
        reasons.append(f"key: expected {cache_key(fields)}, found {entry.get('key')}")
    if not reasons:
        try:
            check_plan_file(engines_dir, name, entry)
        except EngineMismatch as e:
            reasons.append(str(e))
    return (None, reasons) if reasons else (entry, [])
