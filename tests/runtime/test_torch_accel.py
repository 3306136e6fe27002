"""The torch backend's options: torch.compile (inductor) and CUDA-graph capture of the U-Net.

Tolerances: compiled vs eager differ by float reassociation only (inductor fuses and reorders
reductions), so compiled results must stay inside the golden cases' own tolerances, and
compiled vs eager within 1e-4 absolute on the VAE output in [-1, 1]-ish units.
"""

from __future__ import annotations

import pytest
import torch

from uavrt.config import BackendConfig, TorchOptions
from uavrt.errors import ConfigError
from uavrt.runtime.factory import make_backend
from uavrt.runtime.torch_backend import TorchBackend


def test_options_are_off_by_default_and_validated():
    cfg = BackendConfig()
    assert cfg.torch.compile is False and cfg.torch.cuda_graphs is False
    with pytest.raises(ConfigError, match="compile"):
        BackendConfig(backend="onnxruntime", torch=TorchOptions(compile=True))
    with pytest.raises(ConfigError, match="cuda_graphs"):
        BackendConfig(device="cpu", torch=TorchOptions(cuda_graphs=True))
    with pytest.raises(ConfigError, match="cuda_graphs"):
        TorchBackend("cpu", cuda_graphs=True)
    backend = make_backend(BackendConfig(torch=TorchOptions(compile=True)))
    assert backend.compile is True and backend.cuda_graphs is False


def test_compile_applies_to_unet_and_vae_only(golden_dir):
    from uavrt.golden import load_cases
    from uavrt.models.release import build_network
    from uavrt import spec as specs

    case = next(c for c in load_cases(golden_dir) if c.name == "pipeline_vae_3d")
    backend = TorchBackend(compile=True)
    vae = backend.from_module(specs.VAE_3D, build_network("vae_3d", case.meta["vae_config"]))
    assert vae.compiled
    raft_like = TorchBackend(compile=True).from_module(specs.RAFT, torch.nn.Identity())
    assert not raft_like.compiled  # RAFT stays eager


@pytest.mark.slow  # inductor builds C++ for every kernel: minutes on 2 cores
def test_compiled_vae_passes_the_golden_cases_and_matches_eager(golden_dir):
    from uavrt.golden import Context, compare, load_cases
    from uavrt.golden import vae as golden_vae

    for name in ("vae3d_decode", "vaevideo_decode"):
        case = next(c for c in load_cases(golden_dir) if c.name == name)
        eager = golden_vae.run(case, Context(backend=TorchBackend()))
        compiled = golden_vae.run(case, Context(backend=TorchBackend(compile=True)))
        for out in compiled:
            torch.testing.assert_close(compiled[out], eager[out], rtol=0, atol=1e-4)
            r = compare(case, out, compiled[out])
            assert r.passed, r.line()


@pytest.mark.slow
def test_compiled_pipeline_passes_the_golden_case(golden_dir):
    from uavrt.golden import Context, load_cases, run_case

    case = next(c for c in load_cases(golden_dir) if c.name == "pipeline_vae_3d")
    for r in run_case(case, Context(backend=TorchBackend(compile=True))):
        assert r.passed, r.line()


@pytest.mark.gpu
def test_cuda_graph_unet_replays_eager_results(golden_dir):
    # replay must equal eager on the same device: the graph runs the very same kernels
    from uavrt.golden import load_cases
    from uavrt.golden.pipeline import _runner
    from uavrt.golden import Context
    from uavrt import spec as specs

    case = next(c for c in load_cases(golden_dir) if c.name == "pipeline_vae_3d")
    eager = _runner(case, Context(backend=TorchBackend("cuda")), "unet", specs.UNET, "unet_config", "unet_weights")
    graphed = _runner(case, Context(backend=TorchBackend("cuda", cuda_graphs=True)), "unet", specs.UNET,
                      "unet_config", "unet_weights")
    assert graphed.owns_outputs
    cfg = case.meta["unet_config"]
    torch.manual_seed(0)
    for t in (999, 500):  # two calls of one shape: the second replays the captured graph
        x = dict(sample=torch.randn(2, 4, 8, 16, 16, device="cuda"), timestep=torch.tensor(t, device="cuda"),
                 low_res=torch.randn(2, 3, 8, 16, 16, device="cuda"),
                 encoder_hidden_states=torch.randn(2, 77, cfg["cross_attention_dim"], device="cuda"),
                 class_labels=torch.full((2,), 120, dtype=torch.int64, device="cuda"))
        ref = eager(**x)["noise_pred"]
        got = graphed(**x)["noise_pred"].clone()
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert len(graphed._graphs) == 1
