"""The temporal U-Net of Upscale-A-Video (`UNetVideoModel`)."""

from .config import UNetConfig
from .model import UNetVideoModel

__all__ = ["UNetConfig", "UNetVideoModel"]
