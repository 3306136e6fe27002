"""uavrt.kernels.selfcheck.gpu_check (what the GPU acceptance script calls), run on the CPU
against the emulated driver with tiny sizes, and shown to report a launch that differs."""

import json
import types

from uavrt.kernels import abi, gpu, host
from uavrt.kernels.selfcheck import gpu_check

TINY = dict(check_shape=(2, 3, 4, 11, 29), time_shapes=((1, 4, 3, 16, 24),), warmup=1, iters=2)


def test_gpu_check_on_the_emulated_driver(emu):
    report = gpu_check("cpu", launcher=gpu, **TINY)
    json.dumps(report)  # JSON-able as it is
    rows = report["comparisons"]
    assert len(rows) == 2 * 4 + 2 * 2 + 1  # (fp32, fp16) x 4 modes, x 2 warps, one check
    assert report["all_bit_exact"], [r for r in rows if not r["bit_exact"]]
    assert all(r["max_abs_diff"] == 0 and r["elements_differing"] == 0 for r in rows)
    assert {launch.name for launch in emu.launches} == set(abi.KERNEL_NAMES)  # every kernel was launched
    assert [(t["dtype"], t["shape"]) for t in report["timings"]] == [("fp32", [1, 4, 3, 16, 24]),
                                                                       ("fp16", [1, 4, 3, 16, 24])]
    assert all(t["kernel_ms"] > 0 and t["reference_ms"] > 0 for t in report["timings"])


def test_gpu_check_reports_a_launch_that_differs():
    """A launcher that swaps nearest/bilinear sampling must show up as not bit-exact."""
    def wrong_step(*args, nearest, **kw):
        host.step(*args, nearest=not nearest, **kw)
    broken = types.SimpleNamespace(__name__="broken", step=wrong_step, flow_warp=host.flow_warp,
                                   fb_check=host.fb_check)
    report = gpu_check("cpu", launcher=broken, **TINY)
    bad = [r for r in report["comparisons"] if not r["bit_exact"]]
    assert not report["all_bit_exact"] and {r["kernel"] for r in bad} == {"propagate"} and len(bad) == 8
    assert all(r["max_abs_diff"] > 0 and r["elements_differing"] > 0 for r in bad)
