"""The loop itself, on the deterministic fake backend: tiling, clip merge, guidance order, decode."""

import ast
import pathlib

import torch

from uavrt.config import ClipConfig, RunConfig, SamplerConfig, TileConfig
from uavrt.models import schedulers as sch
from uavrt.runtime import pipeline as pl
from uavrt.runtime.plan import clip_spans, plan_window

from fakes import fake_model

T, H, W = 13, 20, 24


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    low_res = torch.rand((1, 3, T, H, W), generator=g) * 2 - 1
    latents = torch.randn((1, 4, T, H, W), generator=g)
    noise = torch.randn((1, 3, T, H, W), generator=g)
    cond = pl.Conditioning(torch.randn((1, 7, 32), generator=g), torch.randn((1, 7, 32), generator=g))
    return low_res, latents, noise, cond


def _cfg(**tiles):
    return RunConfig(sampler=SamplerConfig(steps=3), tiles=TileConfig(**tiles))


def test_blended_tiles_equal_the_untiled_run_for_a_pointwise_network():
    model, (low_res, latents, noise, cond) = fake_model(), _inputs()
    untiled = pl.run_window(model, _cfg(), plan_window(_cfg(), model.ddim, T, H, W, "cpu"), cond, low_res, latents,
                            noise)
    cfg = _cfg(size=16, overlap=6)
    plan = plan_window(cfg, model.ddim, T, H, W, "cpu")
    assert len(plan.tiles) == 4 and len(plan.decode_tiles) == 4
    tiled = pl.run_window(model, cfg, plan, cond, low_res, latents, noise)
    # equal up to float rounding of weights that sum to 1 (a few ulp), nowhere a seam
    torch.testing.assert_close(tiled, untiled, rtol=0, atol=2e-6)


def test_batched_unet_calls_give_identical_output():
    model, (low_res, latents, noise, cond) = fake_model(temporal=True), _inputs(1)
    base = _cfg(size=16, overlap=6)
    one = pl.run_window(model, base, plan_window(base, model.ddim, T, H, W, "cpu"), cond, low_res, latents, noise)
    calls_one = len(model.unet.calls)
    model.unet.calls.clear()
    batched = RunConfig(sampler=base.sampler, tiles=base.tiles, unet_batch=3)
    plan = plan_window(batched, model.ddim, T, H, W, "cpu")
    out = pl.run_window(model, batched, plan, cond, low_res, latents, noise)
    assert len(model.unet.calls) < calls_one and model.unet.calls[0][0] == 2 * 3
    assert torch.equal(out, one)


def _reference_v(model, cfg, cond, latents, noisy_lr, t):
    """The release's predict_v written out literally: per clip [uncond, cond] U-Net call, running
    0.5/0.5 average over clips in order, guidance after the merge."""
    merged = None
    seen = torch.zeros(latents.shape[2], dtype=torch.bool)
    for clip in clip_spans(latents.shape[2], 8, 2):
        fs = slice(clip.start, clip.stop)
        out = model.unet(sample=latents[:, :, fs].expand(2, -1, -1, -1, -1).contiguous(),
                         timestep=torch.tensor(t), low_res=noisy_lr[:, :, fs].expand(2, -1, -1, -1, -1).contiguous(),
                         encoder_hidden_states=torch.cat([cond.uncond, cond.cond]),
                         class_labels=torch.tensor([120, 120]))["noise_pred"]
        if merged is None:
            merged = torch.zeros((2,) + tuple(out.shape[1:2]) + tuple(latents.shape[2:]))
        for j, f in enumerate(range(clip.start, clip.stop)):
            if seen[f]:
                merged[:, :, f] = 0.5 * merged[:, :, f] + 0.5 * out[:, :, j]
            else:
                merged[:, :, f] = out[:, :, j]
                seen[f] = True
    u, c = merged[0:1], merged[1:2]
    return u + cfg.sampler.guidance_scale * (c - u)


def test_clip_merge_and_guidance_follow_the_release():
    model, (low_res, latents, noise, cond) = fake_model(temporal=True), _inputs(2)
    cfg = _cfg()
    plan = plan_window(cfg, model.ddim, T, H, W, "cpu")
    assert [(c.start, c.stop) for c in plan.clips] == [(0, 8), (5, 13), (5, 13)]  # the release's duplicate
    noisy = pl.noise_low_res(model, low_res, noise, 120)
    got = pl.predict_v(model, cfg, plan, cond, latents, noisy, 0)
    ref = _reference_v(model, cfg, cond, latents, noisy, plan.timesteps[0][0])
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
    mean_cfg = RunConfig(sampler=cfg.sampler, clips=ClipConfig(merge="mean"))
    mean = pl.predict_v(model, mean_cfg, plan_window(mean_cfg, model.ddim, T, H, W, "cpu"), cond, latents, noisy, 0)
    assert not torch.allclose(mean, got)  # the merge rule is visible in the output


def test_denoise_steps_are_the_ddim_schedule():
    model, (low_res, latents, noise, cond) = fake_model(), _inputs(3)
    cfg = _cfg()
    plan = plan_window(cfg, model.ddim, T, H, W, "cpu")
    assert [t for t, _ in plan.timesteps] == sch.ddim_timesteps(model.ddim, 3).tolist()
    z = pl.denoise(model, cfg, plan, cond, low_res, latents, noise)
    x, noisy = latents.clone(), pl.noise_low_res(model, low_res, noise, 120)
    for i, (t, t_prev) in enumerate(plan.timesteps):
        v = pl.predict_v(model, cfg, plan, cond, x, noisy, i)
        x = sch.ddim_step(model.alphas_cumprod, t, t_prev, x, v)
    assert torch.equal(z, x)


def test_decode_chunks_of_three_and_clamps():
    model, (low_res, latents, _, _) = fake_model(), _inputs(4)
    plan = plan_window(_cfg(), model.ddim, T, H, W, "cpu")
    assert [(c.start, c.stop) for c in plan.decode_chunks] == [(0, 3), (3, 6), (6, 9), (9, 12), (12, 13)]
    video = pl.decode(model, _cfg(), plan, latents * 30, low_res)
    assert video.shape == (1, 3, T, 4 * H, 4 * W) and video.abs().max() <= 1.0


def test_the_loop_imports_no_backend():
    root = pathlib.Path(pl.__file__).parent
    for name in ("pipeline.py", "upscaler.py", "plan.py", "stream.py", "model.py"):
        tree = ast.parse((root / name).read_text())
        mods = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        bad = {m for m in mods if "onnxruntime" in m or "tensorrt" in m or m.endswith(("ort_backend", "trt_backend"))}
        assert not bad, f"{name} imports {bad}"
