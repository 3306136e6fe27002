"""TensorRT engine build: one serialized engine (plan) per network from its FP16 ONNX graph.

TensorRT 11 networks are always strongly typed: the precision of every layer is the precision
of the ONNX graph, so an FP16 engine comes from the FP16 graph `uavrt export` writes (there is
no FP16 builder flag any more). The build itself is Polygraphy's loaders
(`NetworkFromOnnxPath` -> `CreateConfig` -> `EngineBytesFromNetwork`); this module adds the
profiles derived from the run plan and the engine cache (`cache.py`): an up-to-date engine is
reused, a stale one is rebuilt only with `overwrite=True`. Before the first build every graph
is checked against the TensorRT 11 ONNX parser's operator table (`trt_ops.py`): a graph it
cannot parse is refused naming the op, not minutes into a build.

`tensorrt` is imported lazily; without it every entry point raises BackendUnavailable at once.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError, EngineMismatch, OutputExistsError, WeightsError
from ..errors import check_choice, check_range
from ..fsutil import atomic_path
from . import cache
from .profiles import ProfilePlan, derive_profiles
from .trt_ops import require_trt_ready
from ..spec import SPECS, get_spec
from ..trt_env import INSTALL_HINT, gpu_identity, require_tensorrt, version_tuple  # noqa: F401 (re-exported)

HARDWARE_LEVELS = ("none", "ampere_plus", "same_compute_capability")
PRECISIONS = ("fp16", "fp32")


def hardware_level(hardware_compatible) -> str:
    """False/'none' -> 'none'; True -> 'ampere_plus' (TensorRT's cross-architecture level)."""
    if isinstance(hardware_compatible, bool) or hardware_compatible is None:
        return "ampere_plus" if hardware_compatible else "none"
    if isinstance(hardware_compatible, str) and hardware_compatible in HARDWARE_LEVELS:
        return hardware_compatible
    raise ConfigError("hardware_compatible", hardware_compatible,
                      "False, True (= 'ampere_plus'), " + ", ".join(repr(v) for v in HARDWARE_LEVELS))


def build_engines(onnx_dir, out_dir, *, plan: ProfilePlan, networks=None, precision: str = "fp16",
                  optimization_level: int = 3, timing_cache=None, version_compatible: bool = False,
                  hardware_compatible=False, workspace_gb: float | None = None,
                  overwrite: bool = False, progress=None) -> list:
    """Build (or reuse) `<out_dir>/<network>.<precision>.plan` for each network; return the entries.

    onnx_dir: where `uavrt export` wrote `<network>.<precision>.onnx`.
    networks: names (default: every network whose ONNX exists in onnx_dir).
    timing_cache: path of a TensorRT timing cache, read and updated (speeds up rebuilds; it does
    not change what an engine computes, so it is not part of the cache key).
    hardware_compatible: False, True (= 'ampere_plus') or 'same_compute_capability'.
    overwrite: rebuild an engine whose cached plan is stale or of unknown origin (without it
    such an engine is refused, never silently replaced). An up-to-date engine is always reused.
    progress: optional callable receiving one-line status messages.
    """
    trt = require_tensorrt()  # first: no TensorRT -> fail before any work
    if not isinstance(plan, ProfilePlan):
        raise ConfigError("plan", type(plan).__name__, "a uavrt.export.profiles.ProfilePlan")
    check_choice("precision", precision, PRECISIONS)
    check_range("optimization_level", optimization_level, 0, 5, integer=True)
    if workspace_gb is not None and not (isinstance(workspace_gb, (int, float)) and workspace_gb > 0):
        raise ConfigError("workspace_gb", workspace_gb, "a positive number of GiB or None (TensorRT's default)")
    hw_level = hardware_level(hardware_compatible)
    onnx_dir, out_dir = Path(onnx_dir), Path(out_dir)
    names = _select_networks(onnx_dir, networks, precision)
    gpu_name, capability = gpu_identity()
    say = progress or (lambda msg: None)

    # first every graph's cache state and TensorRT-readiness, then the builds: a stale engine or
    # an unparseable graph is refused before minutes of building the others
    todo = []
    for name in names:
        onnx_path = onnx_dir / f"{name}.{precision}.onnx"
        fp = cache.onnx_fingerprint(onnx_path)
        _check_onnx_metadata(onnx_path, fp.metadata, name, precision)
        # the graph carries its network config: dims the weights fix (text width) come from it
        profiles = derive_profiles(get_spec(name), plan, config=_onnx_config(fp.metadata))
        fields = cache.key_fields(
            network=name, precision=precision, onnx_sha256=fp.sha256, profiles=profiles,
            tensorrt_version=trt.__version__, gpu_name=gpu_name, compute_capability=capability,
            optimization_level=optimization_level, version_compatible=version_compatible,
            hardware_compatibility=hw_level,
            workspace_bytes=None if workspace_gb is None else int(workspace_gb * 2**30))
        ename = cache.engine_name(name, precision)
        plan_path = out_dir / cache.plan_filename(name, precision)
        entry, stale = cache.lookup(out_dir, ename, fields)
        if entry is None:
            if stale and not overwrite:
                raise EngineMismatch(f"engine {ename} in {out_dir} is stale ({'; '.join(stale)}); "
                                     "pass overwrite=True (--overwrite) to rebuild it")
            if plan_path.exists() and not overwrite:  # a plan no manifest entry vouches for
                raise OutputExistsError(plan_path)
            require_trt_ready(onnx_path, label=onnx_path.name)
        todo.append((name, onnx_path, fp, profiles, fields, ename, plan_path, entry))

    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (name, onnx_path, fp, profiles, fields, ename, plan_path, entry) in enumerate(todo, 1):
        if entry is not None:
            say(f"[{i}/{len(names)}] {ename}: up to date ({plan_path})")
            entries.append(entry)
            continue
        say(f"[{i}/{len(names)}] {ename}: building from {onnx_path.name} "
            f"(optimisation level {optimization_level}; this can take minutes)")
        t0 = time.perf_counter()
        data = _build_serialized(trt, onnx_path, profiles, optimization_level=optimization_level,
                                 timing_cache=timing_cache, version_compatible=version_compatible,
                                 hw_level=hw_level, workspace_gb=workspace_gb)
        seconds = time.perf_counter() - t0
        with atomic_path(plan_path, overwrite=True) as tmp:
            tmp.write_bytes(data)
        entry = cache.make_entry(fields, plan_path, build_seconds=seconds, onnx_file=onnx_path.name,
                                 onnx_metadata=fp.metadata,
                                 built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        cache.write_entry(out_dir, ename, entry)
        say(f"[{i}/{len(names)}] {ename}: built in {seconds:.0f} s -> {plan_path}")
        entries.append(entry)
    return entries


def _select_networks(onnx_dir: Path, networks, precision: str) -> list:
    if networks is None:
        names = [n for n in SPECS if (onnx_dir / f"{n}.{precision}.onnx").exists()]
        if not names:
            raise WeightsError(f"no {precision} ONNX graphs (<network>.{precision}.onnx) in {str(onnx_dir)!r}: "
                               "run `uavrt export` first")
        return names
    names = [check_choice("network", n, tuple(SPECS)) for n in networks]
    missing = [n for n in names if not (onnx_dir / f"{n}.{precision}.onnx").exists()]
    if missing:
        raise WeightsError(f"missing ONNX graphs in {str(onnx_dir)!r}: "
                           f"{', '.join(f'{n}.{precision}.onnx' for n in missing)}; run `uavrt export` first")
    return names


def _check_onnx_metadata(path: Path, metadata: dict, network: str, precision: str):
    """The graph's own metadata (written by `uavrt export`) must agree with its file name."""
    for field, want in (("network", network), ("precision", precision)):
        found = [v for k, v in metadata.items() if k.rsplit(".", 1)[-1] == field]
        if found and found[0] != want:
            raise EngineMismatch(f"{path}: metadata {field}={found[0]!r}, expected {want!r} from the file name")


def _onnx_config(metadata: dict):
    import json

    text = next((v for k, v in metadata.items() if k.rsplit(".", 1)[-1] == "config"), None)
    try:
        config = json.loads(text) if text else None
    except ValueError:
        return None
    return config if isinstance(config, dict) else None


def _build_serialized(trt, onnx_path: Path, profiles: dict, *, optimization_level: int, timing_cache,
                      version_compatible: bool, hw_level: str, workspace_gb) -> bytes:
    """Polygraphy's loaders: parse -> config (profile, options) -> build_serialized_network."""
    from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath, Profile

    profile = Profile()
    for name, (lo, opt, hi) in profiles.items():
        profile.add(name, lo, opt, hi)
    pools = None
    if workspace_gb is not None:
        pools = {trt.MemoryPoolType.WORKSPACE: int(workspace_gb * 2**30)}
    hw = None
    if hw_level != "none":
        hw = getattr(trt.HardwareCompatibilityLevel, hw_level.upper())
    cache_path = None if timing_cache is None else str(timing_cache)
    config = CreateConfig(profiles=[profile], builder_optimization_level=optimization_level,
                          hardware_compatibility_level=hw, version_compatible=version_compatible or None,
                          memory_pool_limits=pools, load_timing_cache=cache_path)
    # TensorRT 11 networks are always strongly typed (the flag is gone); 10.x must ask for it,
    # or it would run the FP16 graph's layers in whatever precision it likes.
    strongly_typed = True if version_tuple(trt.__version__) < (11,) else None
    network = NetworkFromOnnxPath(str(onnx_path), strongly_typed=strongly_typed)
    data = EngineBytesFromNetwork(network, config=config, save_timing_cache=cache_path)()
    return bytes(data)
