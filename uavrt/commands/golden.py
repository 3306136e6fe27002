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
    g.set_defaults(func=run)


def run(a) -> int:
    from ..config import BackendConfig
    from ..golden import Context, run_golden
    from ..runtime.factory import make_backend
    ctx = Context(backend=make_backend(BackendConfig(backend=a.backend, device=a.device)), propagator=a.propagator)
    results = run_golden(a.dir, ctx, only=str_list(a.only) if a.only else None, echo=print)
    by_case: dict = {}
    for r in results:
        by_case[r.case] = by_case.get(r.case, True) and r.passed
    passed = sum(by_case.values())
    print(f"{passed} passed, {len(by_case) - passed} failed")
    return 0 if passed == len(by_case) and by_case else 1
