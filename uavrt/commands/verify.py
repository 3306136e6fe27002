"""`uavrt verify`: a backend against ONNX Runtime and PyTorch on the same inputs."""

from __future__ import annotations

from .common import str_list


def add_parser(sub):
    v = sub.add_parser("verify", help="compare a backend with ONNX Runtime and PyTorch on the same inputs")
    v.add_argument("--backend", default="tensorrt")
    v.add_argument("--engines", required=True)
    v.add_argument("--weights")
    v.add_argument("--demo", action="store_true")
    v.add_argument("--networks", default="unet,vae_3d,raft")
    v.add_argument("--device", default="cuda")
    v.set_defaults(func=run)


def run(a) -> int:
    import sys
    from ..config import check_device
    from ..errors import ConfigError
    from ..spec import SPECS
    from ..verify import verify_release
    networks = list(str_list(a.networks))
    if not networks:
        raise ConfigError("--networks", a.networks, "a comma-separated list of " + ", ".join(SPECS))
    check_device(a.device)  # before any network is loaded or exported
    report = verify_release(a.engines, weights=a.weights, demo=a.demo, networks=networks,
                            backend=a.backend, device=a.device,
                            progress=lambda line: print(f"uavrt verify: {line}", file=sys.stderr, flush=True))
    print(report.format())
    return 0 if report.passed else 1
