"""Peak memory while a block runs: host RSS and GPU memory.

Host: a daemon thread samples this process's RSS (psutil) every `interval_s`; the sampled peak
is what the measured runs needed on top of everything already resident (models included, so
it is the process's footprint, not a delta). `ru_maxrss` (getrusage) is the lifetime peak of
the process, loading and export included, and is reported alongside.
GPU: torch's allocator peak (`torch.cuda.max_memory_allocated`) for memory torch allocates;
backends with their own allocator (ONNX Runtime, TensorRT) are invisible to it, so for them
the device-wide used memory (`torch.cuda.mem_get_info`) is sampled instead, and the source is
named in the result.
"""

from __future__ import annotations

import os
import resource
import sys
import threading

import torch


def process_max_rss_mb() -> float:
    """Lifetime peak RSS of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class PeakMemory:
    """`with PeakMemory(device, torch_allocator=True) as m: ...` then `m.result()`."""

    def __init__(self, device="cpu", *, torch_allocator: bool = True, interval_s: float = 0.005):
        self.device = torch.device(device)
        self.torch_allocator = torch_allocator
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = None
        self.peak_rss = 0
        self.peak_gpu_used = 0

    def _sample(self):
        import psutil
        proc = psutil.Process(os.getpid())
        gpu = self.device.type == "cuda" and not self.torch_allocator
        while True:
            self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            if gpu:
                free, total = torch.cuda.mem_get_info(self.device)
                self.peak_gpu_used = max(self.peak_gpu_used, total - free)
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="uavrt-bench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._stop.set()
        self._thread.join()
        return False

    def result(self) -> dict:
        out = {"peak_host_mb": round(self.peak_rss / 2**20, 1),
               "peak_host_mb_process": round(process_max_rss_mb(), 1),
               "peak_gpu_mb": None, "peak_gpu_why": None, "peak_gpu_source": None}
        if self.device.type != "cuda":
            out["peak_gpu_why"] = f"device is {self.device.type}: no GPU memory is used"
        elif self.torch_allocator:
            out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
            out["peak_gpu_source"] = "torch.cuda.max_memory_allocated"
        else:
            out["peak_gpu_mb"] = round(self.peak_gpu_used / 2**20, 1)
            out["peak_gpu_source"] = "device-wide used memory (torch.cuda.mem_get_info), sampled"
        return out
