"""Golden cases of kind "unet": one UNetVideoModel call on a tiny seeded network."""

from __future__ import annotations

from ..spec import UNET
from ..models.unet import UNetVideoModel


def run(case, ctx) -> dict:
    model = UNetVideoModel.from_config(case.meta["config"])
    # strict: the weights use the official names, so every key must be consumed and present
    model.load_state_dict(case.weights(), strict=True)
    runner = ctx.backend.from_module(UNET, model.eval())
    out = runner(**{name: case.input(name) for name in UNET.input_names})
    return {"sample": out["noise_pred"]}
