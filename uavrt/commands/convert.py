"""`uavrt convert`: release weights (.bin/.pth) -> safetensors, same layout."""

from __future__ import annotations


def add_parser(sub):
    c = sub.add_parser("convert", help="release weights -> safetensors (optionally fp16)")
    c.add_argument("weights")
    c.add_argument("out")
    c.add_argument("--fp16", action="store_true")
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=run)


def run(a) -> int:
    from ..models.convert import convert_weights
    for p in convert_weights(a.weights, a.out, fp16=a.fp16, overwrite=a.overwrite):
        print(f"wrote {p}")
    return 0
