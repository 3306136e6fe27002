"""GET /v1/metrics in the Prometheus text format (prometheus_client renders it).

A fresh registry per scrape, filled from the job store and the worker: the numbers are read
when scraped, never kept twice.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .store import STATES


class _Collector:
    def __init__(self, store, worker, cfg, counters, upscaler):
        self.store, self.worker, self.cfg, self.counters, self.upscaler = store, worker, cfg, counters, upscaler

    def collect(self):
        counts = self.store.counts()
        g = GaugeMetricFamily("uavrt_queue_length", "Jobs waiting to run")
        g.add_metric([], counts["queued"])
        yield g
        g = GaugeMetricFamily("uavrt_jobs", "Jobs by state (records kept for --keep-hours)", labels=["state"])
        for s in STATES:
            g.add_metric([s], counts[s])
        yield g
        running = self.store.get(self.worker.current) if self.worker.current else None
        fps = (running.progress or {}).get("fps") if running is not None and running.progress else None
        g = GaugeMetricFamily("uavrt_frames_per_second",
                              "Output frames per second of the running job (else of the last finished one)")
        g.add_metric([], float(fps if fps is not None else (self.worker.last_fps or 0.0)))
        yield g
        c = CounterMetricFamily("uavrt_frames", "Frames upscaled by finished jobs since the server started")
        c.add_metric([], self.worker.frames_total)
        yield c
        c = CounterMetricFamily("uavrt_rejected_requests", "Refused requests by reason", labels=["reason"])
        for reason, n in sorted(self.counters["rejected"].items()):
            c.add_metric([reason], n)
        yield c
        g = GaugeMetricFamily("uavrt_disk_used_bytes", "Bytes under the jobs folder")
        g.add_metric([], self.store.disk_used())
        yield g
        g = GaugeMetricFamily("uavrt_disk_quota_bytes", "Disk quota of the jobs folder (--disk-quota-gb)")
        g.add_metric([], self.cfg.disk_quota_bytes)
        yield g
        yield from _gpu_memory()


def _gpu_memory():
    import torch
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return
    alloc = GaugeMetricFamily("uavrt_gpu_memory_allocated_bytes", "torch allocated GPU memory", labels=["device"])
    peak = GaugeMetricFamily("uavrt_gpu_memory_reserved_bytes", "torch reserved GPU memory", labels=["device"])
    for i in range(torch.cuda.device_count()):
        alloc.add_metric([str(i)], torch.cuda.memory_allocated(i))
        peak.add_metric([str(i)], torch.cuda.memory_reserved(i))
    yield alloc
    yield peak


def render(store, worker, cfg, counters, upscaler):
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, cpu seconds, open fds
    registry.register(_Collector(store, worker, cfg, counters, upscaler))
    return generate_latest(registry), CONTENT_TYPE_LATEST
