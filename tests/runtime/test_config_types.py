"""Python API: wrong types fail at construction with the CLI's ConfigError (issue 16 item 8)."""

import pytest

from uavrt.config import (BackendConfig, ClipConfig, DecodeConfig, PropagationConfig, RunConfig, SamplerConfig,
                          TileConfig, WindowConfig)
from uavrt.errors import ConfigError
from uavrt.runtime.files import OutputConfig

BAD = [
    (lambda: RunConfig(sampler=None), "sampler"),
    (lambda: RunConfig(tiles={"size": 64}), "tiles"),
    (lambda: SamplerConfig(guidance_scale="x"), "guidance_scale"),
    (lambda: SamplerConfig(guidance_scale=float("inf")), "guidance_scale"),
    (lambda: SamplerConfig(seed="a"), "seed"),
    (lambda: SamplerConfig(seed=1.5), "seed"),
    (lambda: SamplerConfig(steps=True), "steps"),
    (lambda: SamplerConfig(steps="30"), "steps"),
    (lambda: SamplerConfig(prompt=None), "prompt"),
    (lambda: SamplerConfig(negative_prompt=3), "negative_prompt"),
    (lambda: SamplerConfig(propagation_steps="24"), "propagation_steps"),
    (lambda: SamplerConfig(propagation_steps=5), "propagation_steps"),
    (lambda: SamplerConfig(propagation_steps=(1.0,)), "propagation_steps"),
    (lambda: PropagationConfig(fuse_scale="half"), "fuse_scale"),
    (lambda: PropagationConfig(fix_flow_resize="yes"), "fix_flow_resize"),
    (lambda: PropagationConfig(interpolation=["nearest"]), "interpolation"),
    (lambda: ClipConfig(length=8.0), "clip_length"),
    (lambda: TileConfig(overlap=-5), "tile_overlap"),
    (lambda: TileConfig(overlap=200), "tile_overlap"),
    (lambda: TileConfig(size=64, overlap=-1), "tile_overlap"),
    (lambda: TileConfig(size="64"), "tile"),
    (lambda: WindowConfig(frames=None), "window"),
    (lambda: DecodeConfig(w_lr="1"), "w_lr"),
    (lambda: DecodeConfig(color_fix=None), "color_fix"),
    (lambda: BackendConfig(device="tpu"), "device"),
    (lambda: BackendConfig(device="cuda:x"), "device"),
    (lambda: BackendConfig(device=0), "device"),
    (lambda: BackendConfig(engines=3), "engines"),
    (lambda: OutputConfig(fps=0), "fps"),
    (lambda: OutputConfig(fps=10 ** 9), "fps"),
    (lambda: OutputConfig(overwrite="no"), "overwrite"),
]


@pytest.mark.parametrize("make,param", BAD, ids=[p + str(i) for i, (_, p) in enumerate(BAD)])
def test_wrong_type_or_value_is_a_config_error(make, param):
    with pytest.raises(ConfigError) as e:
        make()
    assert e.value.param == param


def test_good_values_still_work():
    import numpy as np
    s = SamplerConfig(seed=np.int64(3), propagation_steps=[2, 1], guidance_scale=6)
    assert s.propagation_steps == (1, 2) and s.seed == 3
    assert TileConfig(size=64, overlap=32).overlap == 32
    assert BackendConfig(device="cuda:1").device == "cuda:1"  # the form; availability is checked at use
    assert OutputConfig(fps="30000/1001").fps.denominator == 1001


def test_device_availability_is_checked_before_use():
    import torch
    from uavrt.config import check_device
    assert check_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        for d in ("cuda", "cuda:3"):
            with pytest.raises(ConfigError, match="'cpu' here"):
                check_device(d)


@pytest.mark.parametrize("cfg", [{}, None, SamplerConfig()])
def test_with_config_refuses_what_is_not_a_run_config(cfg):
    from fakes import fake_model  # a strict fake of the loaded model (no weights)
    from uavrt.runtime.upscaler import Upscaler
    up = Upscaler(fake_model())
    with pytest.raises(ConfigError) as e:
        up.with_config(cfg)
    assert e.value.param == "cfg"
