"""Termination signals as exceptions, so every `with`/`finally` removes its temporary output.

SIGINT already raises KeyboardInterrupt. SIGTERM (kill, systemd, a job scheduler) and SIGHUP (the
terminal closed, the ssh session dropped) would otherwise end the process at once and leave
`.NAME.partial.*` temps behind. Inside `interruptible()` the first of them raises Interrupted
(a KeyboardInterrupt) in the main thread; a second one while cleanup runs is ignored so the
cleanup itself is not cut short. SIGKILL cannot be caught: its temps are removed by the next run
for the same output (fsutil.remove_stale_temps).
"""

from __future__ import annotations

import contextlib
import signal
import threading

HANDLED = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"{signal.Signals(signum).name} received")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention for "killed by signal N"


@contextlib.contextmanager
def interruptible(signals=HANDLED):
    """Within the block, SIGTERM/SIGHUP raise Interrupted. No-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if fired:
            return  # already unwinding: let the cleanup finish
        fired.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
