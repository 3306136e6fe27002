"""What an exported graph says about itself (ONNX `metadata_props`), and checking it.

Every graph carries, under `uavrt.*` keys: the network name, precision, sha256 of the source
weights, the network config (JSON), the I/O spec (JSON: names, dims, ranges), the opset, the
exporter (torch version), the uavrt version and, for fp16 graphs, the fp16 policy. A runtime
loading a graph checks these against what it expects, so a graph exported from other weights,
another config or at another precision is refused instead of silently producing wrong video.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..errors import EngineMismatch

PREFIX = "uavrt."
FIELDS = ("network", "precision", "weights_sha256", "config", "spec", "opset", "exporter", "version")
# `expect` keys a caller may check, with the aliases it may use
_ALIASES = {"weights_hash": "weights_sha256"}


def weights_sha256(state_dict: dict) -> str:
    """sha256 over a state dict in a canonical order: sorted names; per tensor its name, dtype,
    shape and raw bytes (contiguous, CPU). Independent of dict order and of the device."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach()
        h.update(f"{name}|{str(t.dtype).removeprefix('torch.')}|{list(t.shape)}\n".encode())
        if t.numel():
            h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def canonical_config(config: dict | None) -> str:
    """JSON of a config without its "_"-prefixed (informational) keys, keys sorted."""
    config = config or {}
    return json.dumps({k: v for k, v in config.items() if not str(k).startswith("_")}, sort_keys=True)


def build_metadata(spec, *, precision: str, weights_hash: str, config: dict | None, opset: int,
                   fp16_policy: dict | None = None) -> dict:
    import uavrt

    meta = {
        "network": spec.name,
        "precision": precision,
        "weights_sha256": weights_hash,
        "config": json.dumps(config or {}, sort_keys=True),
        "spec": json.dumps(spec.to_json(), sort_keys=True),
        "opset": str(opset),
        "exporter": f"torch {torch.__version__}",
        "version": uavrt.__version__,
    }
    if fp16_policy is not None:
        meta["fp16_policy"] = json.dumps(fp16_policy, sort_keys=True)
    return {PREFIX + k: v for k, v in meta.items()}


def set_metadata(model, meta: dict) -> None:
    """Replace the model's uavrt.* metadata_props (other keys are kept)."""
    keep = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for k, v in keep + sorted(meta.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v


def read_metadata(source) -> dict:
    """uavrt metadata of a graph (path or ModelProto) as {field: str}, prefix stripped."""
    if isinstance(source, (str, Path)):
        import onnx
        source = onnx.load(str(source), load_external_data=False)
    return {p.key[len(PREFIX):]: p.value for p in source.metadata_props if p.key.startswith(PREFIX)}


def check_metadata(found: dict, expect: dict | None, source: str = "graph") -> None:
    """Raise EngineMismatch naming the first field that differs from `expect`.

    `expect` keys: network, precision, weights_sha256 (alias weights_hash), config (a dict,
    compared without "_"-prefixed keys), or any other metadata field (compared as strings).
    """
    for key, want in (expect or {}).items():
        if want is None:
            continue
        field = _ALIASES.get(key, key)
        if field not in found:
            raise EngineMismatch(f"{source}: has no uavrt metadata field {field!r} (expected {want!r}); "
                                 f"it was not exported by uavrt or is too old: export it again")
        have = found[field]
        if field == "config":
            want_s, have_s = canonical_config(want), canonical_config(json.loads(have))
            if want_s != have_s:
                raise EngineMismatch(f"{source}: config mismatch: {_config_diff(json.loads(want_s), json.loads(have_s))}; "
                                     f"export the graph again from these weights/config")
        elif str(want) != have:
            raise EngineMismatch(f"{source}: {field} mismatch: expected {str(want)!r}, found {have!r}")


def _config_diff(want: dict, have: dict) -> str:
    for k in sorted(set(want) | set(have)):
        if want.get(k, "<absent>") != have.get(k, "<absent>"):
            return f"key {k!r}: expected {want.get(k, '<absent>')!r}, found {have.get(k, '<absent>')!r}"
    return "configs differ"
