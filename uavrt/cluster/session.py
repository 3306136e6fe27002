"""Connecting to Ray: a local cluster for this process, an existing one, or the caller's own."""

from __future__ import annotations

import contextlib
import os
import uuid

from ..errors import BackendUnavailable, ConfigError


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise BackendUnavailable("Ray is not installed: pip install 'uavrt[ray]' "
                                 "(or pip install 'ray==2.*' torch==2.13.0 to keep your torch build)") from e
    return ray


@contextlib.contextmanager
def connect(address: str | None, *, num_cpus: int | None = None, num_gpus: int | None = None,
            namespace: str | None = None, object_store_bytes: int | None = None, temp_dir: str | None = None):
    """Yield (ray, namespace).

    address None: start a local cluster for this process (shut down on exit). "auto", "HOST:PORT"
    or "ray://HOST:PORT": join an existing cluster (`ray start --head` on the head node); we
    disconnect on exit and leave the cluster running. If this process is already connected
    (a serving stack that called ray.init itself), that connection is used and left open.
    """
    ray = import_ray()
    if address is not None and not isinstance(address, str):
        raise ConfigError("cluster", address, "None (local cluster), 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    if ray.is_initialized():
        yield ray, ray.get_runtime_context().namespace
        return
    namespace = namespace or f"uavrt-{uuid.uuid4().hex[:8]}"
    # workers have no terminal: no progress bars in their logs (their errors still come back)
    kwargs = dict(namespace=namespace, log_to_driver=True, configure_logging=False,
                  runtime_env={"env_vars": {"TQDM_DISABLE": "1"}})
    if address is None:
        # a local cluster: no dashboard (another server and port), bounded shared memory
        kwargs.update(num_cpus=num_cpus if num_cpus is not None else os.cpu_count(), num_gpus=num_gpus,
                      include_dashboard=False, object_store_memory=object_store_bytes)
        if temp_dir:
            kwargs["_temp_dir"] = temp_dir
    else:
        kwargs["address"] = address
    ray.init(**kwargs)
    try:
        yield ray, namespace
    finally:
        ray.shutdown()
