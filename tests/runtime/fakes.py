"""A deterministic fake backend: runners that are simple functions of their inputs.

Pointwise in space, so tiling cannot change their result; the U-Net fake can also mix over
the clip's frames (`temporal=True`), so the clip merge becomes visible in the output.
"""

import torch

from uavrt import spec as specs
from uavrt.runtime.backend import Backend, Runner
from uavrt.runtime.model import Model


class FakeUNet(Runner):
    def __init__(self, device="cpu", temporal=False):
        super().__init__(specs.UNET, device, "fp32")
        self.temporal, self.calls = temporal, []

    def _run(self, x):
        s, lr = x["sample"].float(), x["low_res"].float()
        self.calls.append(tuple(s.shape))
        t = x["timestep"].float() / 1000
        text = x["encoder_hidden_states"].float().mean(dim=(1, 2)).reshape(-1, 1, 1, 1, 1)  # per batch row
        label = x["class_labels"].float().reshape(-1, 1, 1, 1, 1) / 1000
        out = torch.tanh(0.7 * s + 0.3 * lr.mean(1, keepdim=True) - 0.2 * t) + text + label
        if self.temporal:  # depends on which frames share the clip
            out = out + s.mean(dim=2, keepdim=True)
        return {"noise_pred": out}


class FakeVAE(Runner):
    def __init__(self, device="cpu"):
        super().__init__(specs.VAE_3D, device, "fp32")

    def _run(self, x):
        z = x["latents"].float()
        rgb = torch.tanh(z[:, :3] * 0.05 + z[:, 3:4] * 0.01)  # [B, 3, T, h, w]
        return {"video": rgb.repeat_interleave(4, 3).repeat_interleave(4, 4) * 1.5}


class FakeBackend(Backend):
    name = "fake"

    def from_module(self, spec, module):
        return {"unet": FakeUNet, "vae_3d": FakeVAE}[spec.name]()


def fake_model(temporal=False, text=None) -> Model:
    from uavrt.models.demo import DDIM, LOW_RES
    return Model.assemble(unet=FakeUNet(temporal=temporal), vae=FakeVAE(), raft=None,
                          scheduler_config=DDIM, low_res_scheduler_config=LOW_RES,
                          vae_config={"scaling_factor": 0.08333}, device="cpu", text=text)
