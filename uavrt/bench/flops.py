"""Efficiency: U-Net FLOPs counted by torch, device peaks, MFU, bytes moved by propagation.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` on a copy of the U-Net built on
the META device from the network's config: no weights, no memory, ~2 s for the release model,
and the same count whatever backend or device runs the real network. (On real CPU tensors
torch 2.13 routes attention to a CPU flash kernel the counter has no formula for, so the meta
count is the comparable one; it matches what the counter sees for flash/efficient SDPA on a
GPU.) The counter counts matmuls and convolutions (2 FLOPs per multiply-add), as MFU does.

Cross-check (tests/bench/test_flops.py, benchmarks/results/flops_crosscheck.md): the lead's
reference numbers for the release U-Net at batch 2, 8 frames (1.84 TFLOP at 32x32, 7.12 at
64x64) count the reference implementation, which repeats the 77 text tokens once per frame
before the cross-attention K/V projections. uavrt projects them once per sample (same result,
attention.py), so its count is lower by exactly those redundant projections;
`per_frame_text_kv_flops` measures them on the model (hooks on the cross-attention layers) and
count + redundancy reproduces the reference numbers.
"""

from __future__ import annotations

import json

import torch

# Dense (no structured sparsity) peak TFLOP/s from NVIDIA datasheets:
# (name fragment, fp16/bf16 tensor core, tf32 tensor core, fp32 CUDA core).
# First matching fragment wins, so specific names come before generic ones.
GPU_PEAKS = (
    ("H200 NVL", 835.0, 417.5, 60.0),
    ("H200", 989.4, 494.7, 66.9),
    ("H100 NVL", 835.0, 417.5, 60.0),
    ("H100 PCIe", 756.0, 378.0, 51.2),
    ("H100", 989.4, 494.7, 66.9),  # SXM5
    ("B200", 2250.0, 1100.0, 75.0),
    ("GH200", 989.4, 494.7, 66.9),
    ("A100", 312.0, 156.0, 19.5),  # SXM4 and PCIe share the tensor peak
    ("L40S", 362.1, 183.0, 91.6),
    ("L40", 181.0, 90.5, 90.5),
    ("L4", 121.0, 60.0, 30.3),
    ("A10G", 70.0, 35.0, 31.2),
    ("A10", 125.0, 62.5, 31.2),
    ("RTX 6000 Ada", 364.2, 182.1, 91.1),
    ("RTX 4090", 165.2, 82.6, 82.6),  # fp16 with fp32 accumulate (what cuBLAS/cuDNN use)
    ("RTX 4080", 97.5, 48.7, 48.7),
    ("RTX 3090", 71.0, 35.6, 35.6),
    ("V100", 125.0, None, 15.7),
    ("T4", 65.0, None, 8.1),
)


def gpu_peak_tflops(gpu_name: str, precision: str, tf32: bool) -> tuple:
    """(peak TFLOP/s or None, basis text) for a GPU name and the run's arithmetic."""
    for fragment, fp16, tf32_peak, fp32 in GPU_PEAKS:
        if fragment.lower() in gpu_name.lower():
            if precision == "fp16":
                return fp16, f"{fragment} dense fp16 tensor-core peak"
            if tf32 and tf32_peak is not None:
                return tf32_peak, f"{fragment} dense tf32 tensor-core peak (cuDNN/cuBLAS TF32 enabled)"
            return fp32, f"{fragment} fp32 peak (TF32 disabled)"
    return None, f"{gpu_name!r} is not in the peak table (uavrt/bench/flops.py): pass --peak-tflops"


def tf32_enabled() -> bool:
    """Convolutions dominate the U-Net; torch lets cuDNN use TF32 for them by default."""
    return bool(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)


class UNetFlops:
    """FLOPs of one U-Net call for given (B, T, H, W, L), counted on the meta device (cached)."""

    def __init__(self, config: dict):
        self.config = {k: v for k, v in config.items()}
        self._model = None
        self._cache: dict = {}

    def _meta_model(self):
        if self._model is None:
            from ..models.release import build_network
            with torch.device("meta"):
                self._model = build_network("unet", self.config).eval()
        return self._model

    def sample_inputs(self, b: int, t: int, h: int, w: int, length: int = 77) -> dict:
        from ..spec import UNET
        return UNET.sample_inputs({"B": b, "T": t, "H": h, "W": w, "L": length,
                                   "C": int(self.config["cross_attention_dim"])}, device="meta")

    def per_call(self, b: int, t: int, h: int, w: int, length: int = 77) -> int:
        key = (b, t, h, w, length)
        if key not in self._cache:
            from torch.utils.flop_counter import FlopCounterMode
            counter = FlopCounterMode(display=False)
            with counter, torch.inference_mode():
                self._meta_model()(**self.sample_inputs(b, t, h, w, length))
            self._cache[key] = int(counter.get_total_flops())
        return self._cache[key]

    @property
    def key(self) -> str:
        return json.dumps(self.config, sort_keys=True)


def per_frame_text_kv_flops(model: torch.nn.Module, inputs: dict) -> int:
    """FLOPs the reference spends on repeating the text K/V projections once per frame.

    Runs `model(**inputs)` (meta is fine) with hooks on every attention layer that receives the
    text as context: the reference projects [B*T, L, Cx] where uavrt projects [B, L, Cx], i.e.
    B*(T-1)*L extra rows through to_k and to_v (2 FLOPs per multiply-add).
    """
    from ..models.unet.attention import Attention
    b, _, t = inputs["sample"].shape[:3]
    length = inputs["encoder_hidden_states"].shape[1]
    extra = [0]

    def hook(module, args):
        context = args[1] if len(args) > 1 else None
        if context is not None:
            for lin in (module.to_k, module.to_v):
                extra[0] += 2 * b * (t - 1) * length * lin.in_features * lin.out_features

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, Attention)]
    try:
        with torch.inference_mode():
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
    return extra[0]


def flops_crosscheck(sizes=(32, 64), batch: int = 2, frames: int = 8) -> list:
    """The release U-Net's count at batch 2, 8 frames per latent size, with the reference's
    per-frame text projections added back (see the module docstring)."""
    from ..models.release import packaged_config
    counter = UNetFlops(packaged_config("unet_video"))
    rows = []
    for s in sizes:
        ours = counter.per_call(batch, frames, s, s)
        extra = per_frame_text_kv_flops(counter._meta_model(), counter.sample_inputs(batch, frames, s, s))
        rows.append({"latent": f"{s}x{s}", "batch": batch, "frames": frames, "uavrt_tflop": ours / 1e12,
                     "reference_text_kv_repeat_tflop": extra / 1e12, "reference_equivalent_tflop": (ours + extra) / 1e12})
    return rows


def propagation_bytes(shape: tuple, dtype: torch.dtype) -> int:
    """Bytes one `propagate` call must move, as benchmarks/kernel_propagation.py counts them.

    x: [B, C, T, h, w]. Two passes (forward, backward) of T-1 steps; each step reads the frame
    propagated so far and the current frame, both flows (2 x 2 float32 per pixel), and writes one
    frame. Cache-hit re-reads of bilinear neighbours are not counted ("effective" bandwidth).
    """
    b, c, t, h, w = shape
    esize = torch.empty((), dtype=dtype).element_size()
    per_step = b * h * w * (3 * c * esize + 2 * 2 * 4)
    return 2 * max(t - 1, 0) * per_step
