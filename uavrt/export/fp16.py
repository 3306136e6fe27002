"""Mixed fp16/fp32 networks for fp16 graphs (TensorRT 11 strongly typed builds).

TensorRT 11 has no FP16 builder flag: a strongly typed engine runs every layer in the dtype the
ONNX graph gives it, so the fp16 graph itself must say what stays fp32. The conversion is done
in PyTorch before export, per module, from a declarative `Fp16Policy`:

- every module gets a dtype (its parent's, unless a rule says otherwise); its own parameters
  and buffers are cast to it;
- where a module's dtype differs from its parent's, forward hooks cast its floating inputs on
  entry and its floating outputs back on exit, so the exported graph has explicit Casts exactly
  at the precision boundaries;
- after export, `cast_ops_to_fp32` wraps the listed ONNX op types (Softmax) in Casts, because
  softmax is called functionally inside attention (SDPA) and has no module to hook.

What stays fp32, and why:
- normalisation statistics: GroupNorm / LayerNorm / InstanceNorm modules. Variance over
  frames x pixels (GroupNorm spans the whole clip here) loses precision and can overflow in
  fp16; the Cast pair around each norm is cheap next to the convolutions.
  (Norms applied functionally by the model, e.g. the VAE's `video_group_norm`, already compute
  their statistics in fp32 themselves; their parameters are kept fp32 here too.)
- softmax (attention and RAFT's convex-upsampling mask): exp of fp16 logits overflows.
- VAE: only post_quant_conv, conv_in, the low-res condition encoder + SFT fusion (video VAE)
  and the mid block run fp16; the up blocks, conv_norm_out and conv_out run fp32. This is
  diffusers' recipe for this very VAE (the SD x4 upscaler's VAE config sets force_upcast;
  `upcast_vae` keeps only post_quant_conv, conv_in and the mid block in fp16): the
  full-resolution decoder activations exceed fp16's range. `activation_ranges` measures it for
  given weights and inputs.
- RAFT: the root module stays fp32 (coordinates, the correlation volume and its pyramid, the
  grid_sample lookups and flow upsampling: pixel coordinates up to 2048 need fp32's mantissa,
  and flows are summed over 20 iterations); only the feature/context encoders and the update
  block (all convolutions and the GRU) run fp16.
- U-Net: everything else fp16, as the official inference runs it (time/position embeddings
  are computed in fp32 inside the model and cast; the rotary frequencies stay fp32).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

_NORM_TYPES = (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


@dataclass(frozen=True)
class Fp16Policy:
    root_fp16: bool = True          # the network's own dtype (and that of its graph-body)
    fp16_modules: tuple = ()        # module-name prefixes run in fp16 (under an fp32 root)
    fp32_modules: tuple = ()        # module-name prefixes kept in fp32
    fp32_types: tuple = _NORM_TYPES  # module classes kept in fp32 wherever they are
    fp32_onnx_ops: tuple = ("Softmax",)  # ONNX op types computed in fp32 (see cast_ops_to_fp32)

    def describe(self) -> dict:
        return {"root": "fp16" if self.root_fp16 else "fp32", "fp16_modules": list(self.fp16_modules),
                "fp32_modules": list(self.fp32_modules),
                "fp32_types": [t.__name__ for t in self.fp32_types], "fp32_onnx_ops": list(self.fp32_onnx_ops)}


# fp32 root with fp16 islands, so the decoder's tail (up blocks, norm, conv_out) stays fp32 end
# to end instead of returning to fp16 between its modules
_VAE_FP16 = ("post_quant_conv", "decoder.conv_in", "decoder.condition_in", "decoder.condition_fuse",
             "decoder.mid_block")
POLICIES = {
    # rotary frequencies: position maths, read by the attention layers (kept fp32 there)
    "unet": Fp16Policy(fp32_modules=("temporal_rotary_emb",)),
    "vae_3d": Fp16Policy(root_fp16=False, fp16_modules=_VAE_FP16),
    "vae_video": Fp16Policy(root_fp16=False, fp16_modules=_VAE_FP16),
    "raft": Fp16Policy(root_fp16=False, fp16_modules=("fnet", "cnet", "update_block")),
}


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def module_dtypes(model: nn.Module, policy: Fp16Policy) -> dict:
    """Module name -> dtype (pre-order: a parent is decided before its children)."""
    root = torch.float16 if policy.root_fp16 else torch.float32
    out = {}
    for name, m in model.named_modules():
        d = out[name.rpartition(".")[0]] if name else root
        if _under(name, policy.fp16_modules):
            d = torch.float16
        if _under(name, policy.fp32_modules) or isinstance(m, policy.fp32_types):
            d = torch.float32
        out[name] = d
    return out


def _cast(obj, dtype):
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() and obj.dtype != dtype else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(_cast(o, dtype) for o in obj)
    if isinstance(obj, dict):
        return {k: _cast(v, dtype) for k, v in obj.items()}
    return obj


def _boundary_hooks(m: nn.Module, inner: torch.dtype, outer: torch.dtype) -> None:
    def enter(_mod, args, kwargs):
        return _cast(args, inner), _cast(kwargs, inner)

    def leave(_mod, _args, _kwargs, out):
        return _cast(out, outer)

    m.register_forward_pre_hook(enter, with_kwargs=True)
    m.register_forward_hook(leave, with_kwargs=True)


_CONTAINERS = (nn.ModuleList, nn.ModuleDict)  # never called: their children are called by the parent


def to_mixed_fp16(model: nn.Module, policy: Fp16Policy) -> nn.Module:
    """A converted deep copy of `model` (eval mode); `model` itself is left untouched.

    The root's inputs must already be in the root dtype (the exporter's I/O hooks do that).
    Casts sit on the modules that are actually called: a ModuleList/ModuleDict is skipped, the
    boundary is between its children and the module that calls them.
    """
    model = copy.deepcopy(model).eval()
    dtypes = module_dtypes(model, policy)
    modules = dict(model.named_modules())
    for name, m in modules.items():
        d = dtypes[name]
        for p in m.parameters(recurse=False):
            if p.is_floating_point():
                p.data = p.data.to(d)
        for key, b in list(m._buffers.items()):
            if b is not None and b.is_floating_point():
                m._buffers[key] = b.to(d)
        if not name or isinstance(m, _CONTAINERS):
            continue
        caller = name.rpartition(".")[0]
        while caller and isinstance(modules[caller], _CONTAINERS):
            caller = caller.rpartition(".")[0]
        if dtypes[caller] != d:
            _boundary_hooks(m, d, dtypes[caller])
    return model


def cast_ops_to_fp32(model, op_types=("Softmax",)) -> int:
    """Compute the given ONNX ops in fp32 inside an fp16 graph: Cast -> op -> Cast, in place.

    Only single-input/single-output ops whose input is FLOAT16 (per the graph's value_info,
    which the torch exporter writes for every value). Returns the number of ops wrapped.
    """
    from onnx import TensorProto, helper

    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in list(g.input) + list(g.value_info) + list(g.output)}
    types.update({t.name: t.data_type for t in g.initializer})
    nodes, wrapped = [], 0
    for node in g.node:
        if node.op_type not in op_types or types.get(node.input[0]) != TensorProto.FLOAT16:
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        x32, y32 = f"{x}__fp32_in_{wrapped}", f"{y}__fp32_out"
        nodes.append(helper.make_node("Cast", [x], [x32], to=TensorProto.FLOAT, name=f"{node.name}__cast_in"))
        node.input[0], node.output[0] = x32, y32
        nodes.append(node)
        nodes.append(helper.make_node("Cast", [y32], [y], to=TensorProto.FLOAT16, name=f"{node.name}__cast_out"))
        g.value_info.extend([helper.make_tensor_value_info(x32, TensorProto.FLOAT, None),
                             helper.make_tensor_value_info(y32, TensorProto.FLOAT, None)])
        wrapped += 1
    del g.node[:]
    g.node.extend(nodes)
    return wrapped


@torch.no_grad()
def activation_ranges(model: nn.Module, inputs: dict, *, top: int = 10) -> list:
    """Largest |output| per leaf module of an fp32 run: [(max_abs, module name)], largest first.

    For choosing `fp32_modules` with real weights: fp16 overflows above 65504, and a module
    whose fp32 output comes within ~8x of that has no headroom.
    """
    found, handles = {}, []

    def record(name):
        def hook(_m, _a, out):
            for o in (out if isinstance(out, (tuple, list)) else (out,)):
                if isinstance(o, torch.Tensor) and o.is_floating_point() and o.numel():
                    found[name] = max(found.get(name, 0.0), float(o.detach().abs().max()))
        return hook

    for name, m in model.named_modules():
        if name and not any(True for _ in m.children()):
            handles.append(m.register_forward_hook(record(name)))
    try:
        model.eval()(**inputs)
    finally:
        for h in handles:
            h.remove()
    return sorted(((v, k) for k, v in found.items()), reverse=True)[:top]
