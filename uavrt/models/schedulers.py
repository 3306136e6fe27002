"""DDIM (v-prediction) and the low-res noise augmentation, as pure functions.

Upscale-A-Video steps DDIM in two halves so that x0 can be flow-propagated in between:
`predict_x0` (the release's `step_v0`), then `step_from_x0` (its `step_vt`, which derives eps
from the UNPROPAGATED model output and x_t). `ddim_step` is the plain, unsplit step.

Everything here is stateless: a frozen config, a float32 `alphas_cumprod` table and integer
timesteps. There are no scheduler objects, so tiles/clips share nothing mutable.

Numerics follow the release (diffusers 0.16 DDIM/DDPM) operation by operation: betas in float32
via `linspace`, cumprod in float32, every coefficient a float32 0-d tensor raised to 0.5. The
formulas are the standard ones; the ORDER of the float32 operations is what makes the golden
vectors reproduce (they are bitwise equal on the same backend).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..errors import ConfigError, check_choice, check_range

BETA_SCHEDULES = ("scaled_linear", "linear")


# --------------------------------------------------------------------------- configs


def _check_betas(cfg) -> None:
    """The beta schedule fields both schedulers share."""
    check_range("num_train_timesteps", cfg.num_train_timesteps, 1, 100_000, integer=True)
    if cfg.trained_betas is None:
        check_choice("beta_schedule", cfg.beta_schedule, BETA_SCHEDULES)
    elif len(cfg.trained_betas) != cfg.num_train_timesteps:
        raise ConfigError("trained_betas", f"<{len(cfg.trained_betas)} values>",
                          f"num_train_timesteps={cfg.num_train_timesteps} values")


def _betas_tuple(value):
    return None if value is None else tuple(float(b) for b in value)


@dataclass(frozen=True)
class DDIMConfig:
    """The release's DDIM scheduler config (diffusers `scheduler_config.json` keys).

    Defaults are the values the release uses (SD x4 upscaler training config), NOT the
    diffusers class defaults; `from_config` fills missing keys with the diffusers defaults,
    because that is what `DDIMScheduler.from_config` does with a sparse file.
    """

    num_train_timesteps: int = 1000
    beta_start: float = 0.0001
    beta_end: float = 0.02
    beta_schedule: str = "scaled_linear"
    trained_betas: tuple | None = None
    prediction_type: str = "v_prediction"
    clip_sample: bool = False
    set_alpha_to_one: bool = False
    steps_offset: int = 1

    # what diffusers' DDIMScheduler.__init__ uses for a key the file does not set
    DIFFUSERS_DEFAULTS = {
        "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02,
        "beta_schedule": "linear", "trained_betas": None, "prediction_type": "epsilon",
        "clip_sample": True, "set_alpha_to_one": True, "steps_offset": 0, "thresholding": False,
    }

    def __post_init__(self):
        _check_betas(self)
        # The release's loop (step_v0/step_vt) is only meaningful for the v-prediction UNet.
        check_choice("prediction_type", self.prediction_type, ("v_prediction",))
        if self.clip_sample:
            raise ConfigError("clip_sample", self.clip_sample, "False",
                              "the release's scheduler does not clip x0 (latent diffusion)")
        check_range("steps_offset", self.steps_offset, 0, self.num_train_timesteps - 1, integer=True)

    @classmethod
    def from_config(cls, config: dict) -> "DDIMConfig":
        cfg = {**cls.DIFFUSERS_DEFAULTS, **{k: v for k, v in config.items() if not k.startswith("_")}}
        if cfg.get("thresholding"):
            raise ConfigError("thresholding", cfg["thresholding"], "False",
                              "dynamic thresholding is not used by the release")
        # Unknown keys (timestep_spacing, rescale_betas_zero_snr, ...) are ignored, exactly as the
        # release's own DDIMScheduler (a diffusers 0.16 copy without those options) ignores them.
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in cfg.items() if k in names}
        kwargs["trained_betas"] = _betas_tuple(kwargs.get("trained_betas"))
        return cls(**kwargs)


@dataclass(frozen=True)
class LowResNoiseConfig:
    """The low-res video's noise augmentation schedule (diffusers DDPMScheduler keys).

    Only `add_noise` is used, so only the beta schedule matters; the other DDPM keys
    (clip_sample, variance_type, prediction_type) are accepted and ignored.
    """

    num_train_timesteps: int = 1000
    beta_start: float = 0.0001
    beta_end: float = 0.02
    beta_schedule: str = "scaled_linear"
    trained_betas: tuple | None = None

    DIFFUSERS_DEFAULTS = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02,
                          "beta_schedule": "linear", "trained_betas": None}

    def __post_init__(self):
        _check_betas(self)

    @classmethod
    def from_config(cls, config: dict) -> "LowResNoiseConfig":
        cfg = {**cls.DIFFUSERS_DEFAULTS, **{k: v for k, v in config.items() if not k.startswith("_")}}
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in cfg.items() if k in names}
        kwargs["trained_betas"] = _betas_tuple(kwargs.get("trained_betas"))
        return cls(**kwargs)


# --------------------------------------------------------------------------- tables


def alphas_cumprod(cfg) -> torch.Tensor:
    """abar[t] for t in [0, num_train_timesteps): float32 [num_train_timesteps].

    Works for DDIMConfig and LowResNoiseConfig. Same float32 ops as diffusers, so the table is
    bitwise the release's (scaled_linear: linspace of sqrt(beta), then squared).
    """
    n = cfg.num_train_timesteps
    if cfg.trained_betas is not None:
        betas = torch.tensor(cfg.trained_betas, dtype=torch.float32)
    elif cfg.beta_schedule == "linear":
        betas = torch.linspace(cfg.beta_start, cfg.beta_end, n, dtype=torch.float32)
    else:  # "scaled_linear": LDM's "linear" schedule
        betas = torch.linspace(cfg.beta_start ** 0.5, cfg.beta_end ** 0.5, n, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def _check_steps(cfg: DDIMConfig, num_steps) -> int:
    return check_range("num_inference_steps", num_steps, 1, cfg.num_train_timesteps, integer=True)


def ddim_timesteps(cfg: DDIMConfig, num_steps: int) -> torch.Tensor:
    """Descending int64 timesteps, "leading" spacing + steps_offset (30 -> 958, 925, ..., 1)."""
    _check_steps(cfg, num_steps)
    stride = cfg.num_train_timesteps // num_steps
    return torch.arange(num_steps - 1, -1, -1, dtype=torch.int64) * stride + cfg.steps_offset


def prev_timestep(cfg: DDIMConfig, t, num_steps: int):
    """The timestep DDIM steps to from t; negative after the last step (-> final alpha)."""
    _check_steps(cfg, num_steps)
    return t - cfg.num_train_timesteps // num_steps


def _alpha_prev(acp: torch.Tensor, t_prev, set_alpha_to_one: bool) -> torch.Tensor:
    if int(t_prev) >= 0:
        return acp[t_prev]
    # After the last step there is no previous abar: the release (set_alpha_to_one False, SD
    # style) uses abar[0] = 0.9999, so the final latents keep a trace of noise.
    return torch.ones((), dtype=acp.dtype, device=acp.device) if set_alpha_to_one else acp[0]


# --------------------------------------------------------------------------- steps
# t / t_prev: Python ints or 0-d int64 tensors (the release uses the timestep list's entries).
# x_t, v, x0: same shape, any layout (b c t h w in the pipeline).


def predict_x0(acp: torch.Tensor, t, x_t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Release `step_v0`: x0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v (no clipping)."""
    a_t = acp[t].to(x_t.device)
    return (a_t ** 0.5) * x_t - ((1 - a_t) ** 0.5) * v


def step_from_x0(acp: torch.Tensor, t, t_prev, x_t: torch.Tensor, v: torch.Tensor, x0: torch.Tensor,
                 *, set_alpha_to_one: bool = False) -> torch.Tensor:
    """Release `step_vt` (eta 0): x_prev from a (possibly propagated) x0.

    eps comes from the model output v and x_t, NOT from x0: the release keeps the unpropagated
    noise direction and only swaps the x0 term, so propagation moves the denoised estimate
    without re-deriving the noise.
    """
    a_t = acp[t].to(x_t.device)
    a_prev = _alpha_prev(acp, t_prev, set_alpha_to_one).to(x_t.device)
    eps = (a_t ** 0.5) * v + ((1 - a_t) ** 0.5) * x_t
    return (a_prev ** 0.5) * x0 + ((1 - a_prev) ** 0.5) * eps


def ddim_step(acp: torch.Tensor, t, t_prev, x_t: torch.Tensor, v: torch.Tensor,
              *, set_alpha_to_one: bool = False) -> torch.Tensor:
    """Plain DDIM step (eta 0, v-prediction): x_prev."""
    x0 = predict_x0(acp, t, x_t, v)
    return step_from_x0(acp, t, t_prev, x_t, v, x0, set_alpha_to_one=set_alpha_to_one)


# --------------------------------------------------------------------------- noise augmentation


def check_noise_level(level, num_train_timesteps: int = 1000, param: str = "noise_level"):
    """Validate a noise level (int, or an int64 tensor of levels) against the schedule."""
    if isinstance(level, torch.Tensor):
        if level.is_floating_point() or level.numel() == 0:
            raise ConfigError(param, level, "an int64 tensor of levels")
        lo, hi = int(level.min()), int(level.max())
        if lo < 0 or hi > num_train_timesteps - 1:
            raise ConfigError(param, level.tolist(), f"levels in [0, {num_train_timesteps - 1}]")
        return level
    return check_range(param, level, 0, num_train_timesteps - 1, integer=True)


def add_noise(acp_lr: torch.Tensor, image: torch.Tensor, noise: torch.Tensor, level) -> torch.Tensor:
    """DDPM add_noise: sqrt(abar[l]) image + sqrt(1 - abar[l]) noise.

    level: int (one level for all rows) or int64 tensor [B] / [1] (one per batch row).
    image/noise: [B, ...]. As diffusers does, the table is cast to the image dtype first.
    """
    check_noise_level(level, acp_lr.shape[0])
    acp = acp_lr.to(device=image.device, dtype=image.dtype)
    # a Python int indexes the table on its device: no blocking host->device copy of the level
    a = acp[level.to(image.device)] if isinstance(level, torch.Tensor) else acp[int(level)].reshape(1)
    # per-row coefficients broadcast over all trailing dims: [B or 1, 1, 1, ...]
    shape = (-1,) + (1,) * (image.dim() - 1)
    sqrt_a = (a ** 0.5).flatten().reshape(shape)
    sqrt_1ma = ((1 - a) ** 0.5).flatten().reshape(shape)
    return sqrt_a * image + sqrt_1ma * noise
