"""Fused flow-warp + occlusion + blend kernel for Upscale-A-Video's latent propagation.

`propagate` has the semantics of the torch reference `uavrt.models.propagation.propagate` and
runs the per-pixel code of `propagate.h`: compiled by g++ for CPU tensors, by NVRTC (CUBIN) for
CUDA tensors, both at first use and cached under `$UAVRT_CACHE_DIR/kernels`
(default `~/.cache/uavrt/kernels`). `compile_kernels` warms that cache for given GPU archs.

`propagate` is the custom op `torch.ops.uavrt.propagate` (a fake implementation lets it trace
under FakeTensorMode). `abi` holds the kernels' one argument table, `selfcheck.gpu_check` the
GPU acceptance check, and `emulator` an emulated CUDA driver that runs `gpu.py` on the CPU (CI).
"""

from .api import fb_consistency_check, flow_warp, propagate


def compile_kernels(archs: list[str]) -> list[dict]:
    """NVRTC-compile the CUDA kernels for archs like ['sm_80', 'sm_90'] (no GPU needed).

    Returns [{'arch', 'cubin' (ELF bytes), 'seconds', 'path', 'nvrtc'}] and caches each CUBIN.
    """
    from .nvrtc import compile_kernels as _compile
    return _compile(archs)


__all__ = ["propagate", "flow_warp", "fb_consistency_check", "compile_kernels"]
