"""RAFT optical flow (princeton-vl, raft-things architecture, small=False), as Upscale-A-Video uses it."""

from .model import RAFT, build_raft, check_flow_size, load_config, strip_dataparallel

__all__ = ["RAFT", "build_raft", "check_flow_size", "load_config", "strip_dataparallel"]
