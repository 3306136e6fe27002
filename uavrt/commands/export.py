"""`uavrt export`: weights -> ONNX graphs (fp32/fp16) -> optional TensorRT engines."""

from __future__ import annotations

from ..errors import ConfigError


def _names(text: str) -> list:
    return [x for x in text.replace(" ", "").split(",") if x]


def add_parser(sub):
    e = sub.add_parser("export", help="export ONNX graphs (and TensorRT engines with --trt)")
    e.add_argument("--weights")
    e.add_argument("--demo", action="store_true")
    e.add_argument("--out", required=True)
    e.add_argument("--precision", default="fp32,fp16")
    e.add_argument("--networks", default="unet,vae_3d,vae_video,raft")
    e.add_argument("--overwrite", action="store_true")
    e.add_argument("--trt", action="store_true", help="also build TensorRT engines from the fp16 graphs")
    e.add_argument("--opt-level", type=int, default=3)
    e.add_argument("--timing-cache")
    e.add_argument("--version-compatible", action="store_true")
    e.add_argument("--hardware-compatible", action="store_true")
    e.add_argument("--workspace-gb", type=float)
    e.add_argument("--tile", type=int, default=None, help="latent tile size the engines are optimised for")
    e.add_argument("--max-size", type=int, default=None, help="largest low-res side the engines accept")
    e.add_argument("--no-guidance", action="store_true", help="engines for guidance off (batch 1)")
    e.add_argument("--triton-repo", help="also write a Triton model repository (config.pbtxt + model per network)")
    e.set_defaults(func=run)


def run(a) -> int:
    from ..config import RunConfig, SamplerConfig, TileConfig
    from ..models.release import load_network
    from ..export.onnx_export import export_networks

    from pathlib import Path
    from ..fsutil import check_output_location
    from ..spec import SPECS
    from ..errors import check_choice
    networks, precisions = _names(a.networks), _names(a.precision)
    if a.demo == bool(a.weights):
        raise ConfigError("--weights", a.weights, "a weights folder, or --demo (exactly one of them)")
    if not networks:
        raise ConfigError("--networks", a.networks, "a comma-separated list of " + ", ".join(SPECS))
    for n in networks:
        check_choice("--networks", n, tuple(SPECS))
    if not precisions:
        raise ConfigError("--precision", a.precision, "a comma-separated list of fp32, fp16")
    for p in precisions:
        check_choice("--precision", p, ("fp32", "fp16"))
    check_output_location(a.out, "--out", folder=True)  # an existing file, /proc, ...: before any export
    if a.weights:
        from ..preflight import check_weights_layout
        check_weights_layout(a.weights, networks)
    if getattr(a, "timing_cache", None) and Path(a.timing_cache).is_dir():
        raise ConfigError("--timing-cache", a.timing_cache, "a file path (this is a folder)")
    if not 0 <= a.opt_level <= 5:
        raise ConfigError("--opt-level", a.opt_level, "an integer in [0, 5] (TensorRT builder optimisation level)")
    if a.workspace_gb is not None and not 0 < a.workspace_gb <= 1024:
        raise ConfigError("--workspace-gb", a.workspace_gb, "a size in GB in (0, 1024]")
    if a.tile is not None and not 16 <= a.tile <= 4096:
        raise ConfigError("--tile", a.tile, "a tile size in [16, 4096] low-res pixels")
    if a.max_size is not None and not 8 <= a.max_size <= 4096:
        raise ConfigError("--max-size", a.max_size, "a side in [8, 4096] low-res pixels")
    if a.trt:  # fail at once, before minutes of ONNX export, when TensorRT is missing
        from ..export.trt import require_tensorrt
        require_tensorrt()
        if "fp16" not in precisions:
            raise ConfigError("--precision", a.precision, "a list including fp16 with --trt (engines are built "
                              "from the fp16 graphs)")
    if a.demo:
        from ..models.demo import demo_weights_dir
        weights = demo_weights_dir(with_raft="raft" in networks)
    else:
        weights = a.weights
    models = {}
    for name in networks:
        print(f"loading {name} ...", flush=True)
        loaded = load_network(weights, name)
        models[name] = (loaded.module, loaded.weights_hash, loaded.config)
    paths = export_networks(models, a.out, precisions=precisions, networks=networks, overwrite=a.overwrite,
                            progress=lambda *msg: print(*msg, flush=True))
    for p in paths:
        print(f"wrote {p}")
    if a.trt:
        from ..export.profiles import ProfilePlan
        from ..export.trt import build_engines
        run = RunConfig(sampler=SamplerConfig(guidance_scale=1.0 if a.no_guidance else 6.0),
                        tiles=TileConfig(size=a.tile))
        overrides = {}
        if a.max_size:
            m = int(a.max_size)
            overrides = dict(latent_max=(m, m), raft_max=(max(128, -(-m // 8) * 8),) * 2)
        plan = ProfilePlan.from_run_config(run, **overrides)
        for entry in build_engines(a.out, a.out, plan=plan, networks=networks, optimization_level=a.opt_level,
                                   timing_cache=a.timing_cache, version_compatible=a.version_compatible,
                                   hardware_compatible=a.hardware_compatible, workspace_gb=a.workspace_gb,
                                   overwrite=a.overwrite, progress=print):
            print(f"engine {entry}")
    if a.triton_repo:
        from ..export.triton import write_triton_repo
        # TensorRT engines when built (fp16), else the ONNX graphs (fp16 when exported)
        kind, prec = ("plan", "fp16") if a.trt else ("onnx", "fp16" if "fp16" in precisions else precisions[0])
        for p in write_triton_repo(a.out, a.triton_repo, networks=networks, precision=prec, kind=kind,
                                   overwrite=a.overwrite):
            print(f"wrote {p}")
    return 0
