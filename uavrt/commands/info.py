"""`uavrt info`: versions, GPU, usable backends; optional kernel pre-compilation."""

from __future__ import annotations

from .common import str_list


def add_parser(sub):
    i = sub.add_parser("info", help="versions, GPU and usable backends")
    i.add_argument("--compile-kernels", help="compile the CUDA kernels for e.g. sm_80,sm_90 (no GPU needed)")
    i.set_defaults(func=run)


def run(a) -> int:
    from ..info import environment_report, format_report, usable_backends
    print(format_report(environment_report(), usable_backends()))
    if a.compile_kernels:
        from ..kernels import compile_kernels
        for r in compile_kernels(list(str_list(a.compile_kernels))):
            print(f"kernel {r['arch']}: {len(r['cubin'])} bytes CUBIN in {r['seconds']:.2f} s")
    return 0
