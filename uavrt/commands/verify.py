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
    from ..verify import verify_release
    report = verify_release(a.engines, weights=a.weights, demo=a.demo, networks=list(str_list(a.networks)),
                            backend=a.backend, device=a.device)
    print(report.format())
    return 0 if report.passed else 1
