"""Scale out on Ray: many videos and long videos across GPUs and machines.

The work items are (video, window) pairs. One Ray actor per GPU (or per CPU slot) holds the
loaded model; the driver decodes and plans, ships each low-res window to a worker, receives the
upscaled windows back in order and does the cross-fade and the encode exactly as the local path
(`runtime/files.upscale_file` with a remote `submit`), so the output file is the same bytes.

    from uavrt.cluster import upscale_many
    upscale_many(["a.mp4", "b.mp4"], ["a_x4.mp4", "b_x4.mp4"], run_cfg, backend_cfg,
                 demo=True, cluster="auto")        # None: a local cluster on this machine

Ray is imported only when a cluster is used (the `[ray]` extra).
"""

from .jobs import Cluster, ClusterOptions, upscale_many
from .worker import ModelSpec

__all__ = ["Cluster", "ClusterOptions", "ModelSpec", "upscale_many"]
