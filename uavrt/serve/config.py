"""Frozen settings of a job server: where jobs live, who may submit, and the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, check_range

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class ServeConfig:
    jobs_dir: Path
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    token: str | None = None  # bearer token for /v1/* (health excepted); None: no auth
    allow_path: Path | None = None  # a folder whose files may be submitted by path (field `path`)
    max_upload_mb: float = 2048.0
    max_queue: int = 100  # queued jobs (waiting, not counting the running one); beyond: 429
    disk_quota_gb: float = 50.0  # everything under jobs_dir (inputs, results, uploads in flight)
    keep_hours: float = 24.0  # finished jobs (and their files) are deleted this long after finishing
    defaults: Mapping[str, Any] = field(default_factory=dict)  # server-wide job settings (option names)
    codec: str = "libx264"  # results are MP4 with the input's audio copied
    crf: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "jobs_dir", Path(self.jobs_dir))
        if self.allow_path is not None:
            p = Path(self.allow_path)
            if not p.is_dir():
                raise ConfigError("allow_path", str(p), "an existing folder")
            object.__setattr__(self, "allow_path", p.resolve())
        check_range("port", self.port, 0, 65535, integer=True)
        check_range("max_queue", self.max_queue, 1, 1_000_000, integer=True)
        if not 0 < float(self.max_upload_mb) <= 1024 * 1024:
            raise ConfigError("max_upload_mb", self.max_upload_mb, "a size in MB in (0, 1048576]")
        if not 0 < float(self.disk_quota_gb):
            raise ConfigError("disk_quota_gb", self.disk_quota_gb, "a size in GB > 0")
        if not 0 < float(self.keep_hours):
            raise ConfigError("keep_hours", self.keep_hours, "a number of hours > 0")
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("token", "<hidden>", "at least 8 characters")
        object.__setattr__(self, "defaults", dict(self.defaults))

    @property
    def max_upload_bytes(self) -> int:
        return int(float(self.max_upload_mb) * MB)

    @property
    def disk_quota_bytes(self) -> int:
        return int(float(self.disk_quota_gb) * GB)

    @property
    def keep_seconds(self) -> float:
        return float(self.keep_hours) * 3600.0
