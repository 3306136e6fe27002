"""`uavrt golden DIR`: run golden-vector cases and compare."""

from __future__ import annotations

from .common import str_list


def add_parser(sub):
    g = sub.add_parser("golden", help="run golden-vector cases and compare")
    g.add_argument("dir")
    g.add_argument("--backend", default="torch")
    g.add_argument("--device", default="cpu")
    g.add_argument("--propagator", default="torch")
    g.add_argument("--only", help="comma-separated case names or kinds")
    g.add_argument("--unet-batch", type=int, default=1, help="pieces per U-Net call in pipeline cases")
    g.add_argument("--compile", action="store_true", help="torch backend: torch.compile the U-Net and VAE")
    g.set_defaults(func=run)


def run(a) -> int:
    from ..config import BackendConfig, TorchOptions
    from ..golden import Context, run_golden
    from ..config import check_device
    from ..errors import ConfigError
    from ..runtime.factory import make_backend
    check_device(a.device)
    only = str_list(a.only) if a.only is not None else None
    if a.only is not None and not only:
        raise ConfigError("--only", a.only, "comma-separated case names or kinds")
    ctx = Context(backend=make_backend(BackendConfig(backend=a.backend, device=a.device,
                                                     torch=TorchOptions(compile=a.compile))),
                  propagator=a.propagator, unet_batch=a.unet_batch)
    results = run_golden(a.dir, ctx, only=only, echo=print)
    if not results:  # "0 passed, 0 failed" would read like success
        raise ConfigError("--only" if only else "DIR", a.only if only else a.dir,
                          "names or kinds of cases in the golden folder" if only else "a folder of golden cases")
    by_case: dict = {}
    for r in results:
        by_case[r.case] = by_case.get(r.case, True) and r.passed
    passed = sum(by_case.values())
    print(f"{passed} passed, {len(by_case) - passed} failed")
    return 0 if passed == len(by_case) and by_case else 1
