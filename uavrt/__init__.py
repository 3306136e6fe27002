"""uavrt: a production inference runtime for Upscale-A-Video (CVPR 2024)."""

__version__ = "0.1.0"
