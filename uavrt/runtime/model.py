"""The immutable model: runners and constants, loaded once and shared by every run.

`load_model` is the one place that turns a release weights folder and a BackendConfig into a
Model; `Model.assemble` is the one place that turns runners and scheduler configs into one (the
golden runner builds its runners from case weights and calls it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import spec as specs
from ..config import BackendConfig
from ..devices import resolve_device
from ..errors import ConfigError
from ..models import schedulers as sch
from ..models.vae.config import VAEConfig

VAES = ("3d", "video")


@dataclass(frozen=True)
class Model:
    unet: object  # Runner: sample, timestep, low_res, encoder_hidden_states, class_labels -> noise_pred
    vae: object  # Runner: latents (+ low_res, w_lr for vae_video) -> video
    raft: object | None  # Runner: image1, image2 -> flow_low, flow_up (None: loaded without propagation)
    ddim: sch.DDIMConfig
    alphas_cumprod: torch.Tensor  # DDIM table, float32 on device
    low_res_acp: torch.Tensor  # alphas_cumprod of the low-res noise schedule, float32 on device
    device: torch.device
    scaling_factor: float  # the VAE's latent scale (from its config)
    text: object | None = None  # TextEncoder (None when embeddings are given, as in golden cases)
    info: dict = field(default_factory=dict)

    @classmethod
    def assemble(cls, *, unet, vae, raft, scheduler_config: dict, low_res_scheduler_config: dict,
                 vae_config: dict, device, text=None, info=None) -> "Model":
        device = resolve_device(device)
        ddim = sch.DDIMConfig.from_config(scheduler_config)
        lr = sch.LowResNoiseConfig.from_config(low_res_scheduler_config)
        return cls(unet=unet, vae=vae, raft=raft, ddim=ddim, alphas_cumprod=sch.alphas_cumprod(ddim).to(device),
                   low_res_acp=sch.alphas_cumprod(lr).to(device), device=device,
                   scaling_factor=float(vae_config.get("scaling_factor", VAEConfig.scaling_factor)), text=text, info=dict(info or {}))

    def close(self) -> None:
        for r in (self.unet, self.vae, self.raft):
            if r is not None:
                r.close()


def load_model(weights_dir, backend: BackendConfig = BackendConfig(), *, vae: str = "3d",
               with_raft: bool = False, raft_iters: int = 20) -> Model:
    """A release weights folder -> Model on `backend` (RAFT only when propagation will run)."""
    from ..models.release import load_network, scheduler_configs
    from ..models.text import TextEncoder
    from .factory import make_backend
    if vae not in VAES:
        raise ConfigError("vae", vae, "'3d' or 'video'")
    device = resolve_device(backend.device)
    be = make_backend(backend)
    unet = load_network(weights_dir, "unet")
    vae_net = load_network(weights_dir, f"vae_{vae}")
    raft = None
    if with_raft:
        raft_net = load_network(weights_dir, "raft")
        raft_net.module.iters = raft_iters
        raft = be.load_network(specs.RAFT, raft_net)
    ddim_cfg, lr_cfg = scheduler_configs(weights_dir)
    text_dtype = torch.float16 if backend.precision == "fp16" and device.type == "cuda" else torch.float32
    text = TextEncoder.from_folders(f"{weights_dir}/text_encoder", f"{weights_dir}/tokenizer", device, text_dtype)
    info = {"weights": str(weights_dir), "backend": be.name, "vae": f"vae_{vae}", "unet_hash": unet.weights_hash}
    return Model.assemble(unet=be.load_network(specs.UNET, unet),
                          vae=be.load_network(specs.get_spec(f"vae_{vae}"), vae_net), raft=raft,
                          scheduler_config=ddim_cfg, low_res_scheduler_config=lr_cfg,
                          vae_config=vae_net.config, device=device, text=text, info=info)


def get_propagator(name: str) -> Callable:
    """The propagation function of PropagationConfig.propagator: the torch reference or the
    fused kernel (same semantics; the kernel is checked against the reference)."""
    if name == "kernel":
        from ..kernels import propagate
        return propagate
    from ..models.propagation import propagate
    return propagate
