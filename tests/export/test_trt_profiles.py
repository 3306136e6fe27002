"""Optimisation profiles derived from the run plan (pure: no TensorRT needed)."""

import pytest

from uavrt.config import ClipConfig, DecodeConfig, RunConfig, SamplerConfig, TileConfig
from uavrt.errors import ConfigError
from uavrt.export.profiles import ProfilePlan, derive_profiles
from uavrt.spec import RAFT, UNET, VAE_3D, VAE_VIDEO, DimRange, NetworkSpec, f32


def test_unet_profile_follows_the_plan():
    plan = ProfilePlan(clip_frames=8, min_clip_frames=2, cfg_batch=2, latent_min=(32, 48),
                       latent_opt=(64, 96), latent_max=(128, 160), text_len=77, text_dim=1024)
    p = derive_profiles(UNET, plan)
    assert set(p) == set(UNET.input_names)
    assert p["sample"] == ((2, 4, 2, 32, 48), (2, 4, 8, 64, 96), (2, 4, 8, 128, 160))
    assert p["low_res"] == ((2, 3, 2, 32, 48), (2, 3, 8, 64, 96), (2, 3, 8, 128, 160))
    assert p["encoder_hidden_states"] == ((2, 77, 1024),) * 3
    assert p["class_labels"] == ((2,),) * 3
    assert p["timestep"] == ((), (), ())


def test_guidance_off_gives_batch_one():
    p = derive_profiles(UNET, ProfilePlan(cfg_batch=1))
    assert {s[0][0] for name, s in p.items() if name != "timestep"} == {1}


@pytest.mark.parametrize("spec", [VAE_3D, VAE_VIDEO])
def test_vae_profiles_cover_short_last_chunk(spec):
    plan = ProfilePlan(vae_frames=3, vae_latent_min=(16, 16), vae_latent_opt=(64, 64), vae_latent_max=(96, 128))
    p = derive_profiles(spec, plan)
    assert p["latents"] == ((1, 4, 1, 16, 16), (1, 4, 3, 64, 64), (1, 4, 3, 96, 128))
    if spec is VAE_VIDEO:
        assert p["low_res"] == ((1, 3, 1, 16, 16), (1, 3, 3, 64, 64), (1, 3, 3, 96, 128))
        assert p["w_lr"] == ((), (), ())


def test_raft_profile():
    plan = ProfilePlan(raft_pairs=8, raft_min=(128, 128), raft_opt=(256, 448), raft_max=(512, 512))
    p = derive_profiles(RAFT, plan)
    assert p["image1"] == p["image2"] == ((1, 3, 128, 128), (8, 3, 256, 448), (8, 3, 512, 512))


@pytest.mark.parametrize("kw, param", [
    (dict(raft_min=(120, 128)), "raft_min"),          # below RAFT's 128 floor
    (dict(raft_max=(516, 512)), "raft_max"),          # not a multiple of 8
    (dict(latent_opt=(512, 64)), "latent_opt"),       # opt above max
    (dict(latent_min=(0, 8)), "latent_min"),
    (dict(latent_max=(64,)), "latent_max"),
    (dict(cfg_batch=3), "cfg_batch"),
    (dict(min_clip_frames=9), "min_clip_frames"),     # above clip_frames
    (dict(vae_frames=0), "vae_frames"),
])
def test_plan_refuses_bad_values(kw, param):
    with pytest.raises(ConfigError) as e:
        ProfilePlan(**kw)
    assert e.value.param == param


def test_spec_limits_are_enforced():
    # a network whose own limits are narrower than the plan: the profile must not exceed them
    spec = NetworkSpec("raft", inputs=(f32("image1", "N", 3, "H", "W"), f32("image2", "N", 3, "H", "W")),
                       outputs=(f32("flow_up", "N", 2, "H", "W"),),
                       ranges={"H": DimRange(128, 256, 512, 16), "W": DimRange(128, 256, 512, 8)})
    with pytest.raises(ConfigError, match="raft H max"):
        derive_profiles(spec, ProfilePlan(raft_max=(720, 512)))
    with pytest.raises(ConfigError, match="multiple of 16"):
        derive_profiles(spec, ProfilePlan(raft_opt=(264, 256)))
    assert derive_profiles(spec, ProfilePlan(raft_max=(512, 512)))["image1"][2] == (8, 3, 512, 512)


def test_unknown_dim_is_refused():
    spec = NetworkSpec("raft", inputs=(f32("image1", "N", 3, "H", "Q"),), outputs=())
    with pytest.raises(ConfigError, match="Q"):
        derive_profiles(spec, ProfilePlan())


def test_plan_from_run_config():
    run = RunConfig(sampler=SamplerConfig(guidance_scale=1.0), clips=ClipConfig(length=6, overlap=2),
                    tiles=TileConfig(size=192, overlap=32), decode=DecodeConfig(chunk_frames=4))
    plan = ProfilePlan.from_run_config(run, raft_pairs=4)
    assert (plan.clip_frames, plan.cfg_batch, plan.vae_frames, plan.raft_pairs) == (6, 1, 4, 4)
    assert plan.latent_opt == (192, 192)
    # release defaults: guidance on, 8-frame clips, 256 auto tiles, 3-frame chunks
    d = ProfilePlan.from_run_config(RunConfig())
    assert (d.clip_frames, d.cfg_batch, d.vae_frames, d.latent_opt) == (8, 2, 3, (256, 256))
    # a tile larger than the profile max is clamped into the box (opt must lie inside it)
    assert ProfilePlan.from_run_config(run, latent_max=(128, 128)).latent_opt == (128, 128)


def test_plan_json_round_trip():
    plan = ProfilePlan(latent_opt=(128, 128))
    assert ProfilePlan(**plan.to_dict()) == plan


def test_dims_fixed_by_the_weights_come_from_the_config():
    # the U-Net's text width is its cross_attention_dim, whatever the plan's default says
    p = derive_profiles(UNET, ProfilePlan(text_dim=1024), config={"cross_attention_dim": 32})
    assert p["encoder_hidden_states"] == ((2, 77, 32),) * 3
    assert derive_profiles(UNET, ProfilePlan(text_dim=1024), config={})["encoder_hidden_states"][0] == (2, 77, 1024)


@pytest.mark.parametrize("spec", [UNET, VAE_3D, VAE_VIDEO, RAFT])
def test_default_plan_fits_every_release_network(spec):
    assert set(derive_profiles(spec, ProfilePlan())) == set(spec.input_names)
