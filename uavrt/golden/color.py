"""Golden kind `color`: wavelet / AdaIN colour correction and the bicubic x4 style."""

from __future__ import annotations

from ..models import color as C


def run(case, ctx) -> dict:
    content, style, style_lr = case.input("content"), case.input("style"), case.input("style_lr")
    up = C.bicubic_up4(style_lr)
    return {
        "wavelet": C.wavelet_reconstruction(content, style),
        "adain": C.adain_color_fix(content, style),
        "style_lr_bicubic_x4": up,
        # what color_fix(method="wavelet") computes: style = the low-res frames bicubic x4
        "wavelet_with_bicubic_style": C.color_fix(content, style_lr, "wavelet"),
    }
