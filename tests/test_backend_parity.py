"""Every backend against the reference on every golden network: the same cases, the same
tolerances, through the golden runner (which builds runners exactly as the pipeline does)."""

import pytest

from uavrt.config import BackendConfig
from uavrt.golden import Context, run_golden
from uavrt.runtime.factory import make_backend

# ONNX export of the tiny U-Net / video VAE / RAFT takes minutes on 2 cores: those run with UAVRT_SLOW=1
CASES = [("vae3d_decode", ()), ("vaevideo_decode", (pytest.mark.slow,)), ("unet_16x16", (pytest.mark.slow,)),
         ("unet_12x20", (pytest.mark.slow,)), ("raft", (pytest.mark.slow,))]
BACKENDS = [("torch", "cpu", ()), ("onnxruntime", "cpu", ()),
            ("tensorrt", "cuda", (pytest.mark.trt, pytest.mark.gpu))]


@pytest.mark.parametrize("backend,device", [pytest.param(b, d, marks=m, id=b) for b, d, m in BACKENDS])
@pytest.mark.parametrize("case", [pytest.param(c, marks=m, id=c) for c, m in CASES])
def test_backend_reproduces_the_golden_case(golden_dir, backend, device, case, tmp_path):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[onnx]')")
    engines = str(tmp_path) if backend == "tensorrt" else None
    ctx = Context(backend=make_backend(BackendConfig(backend=backend, device=device, engines=engines)))
    results = run_golden(golden_dir, ctx, only=[case])
    assert results, f"no golden case {case!r}"
    failed = [r.line() for r in results if not r.passed]
    assert not failed, "\n".join(failed)
