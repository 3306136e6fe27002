"""`uavrt` command line: the only code that sees argparse.

Each command is a module with `add_parser(sub)` (its flags) and `run(args)` (flags -> frozen
configs -> library calls). Errors exit 2 with one line naming the parameter; no traceback for
expected errors.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import UavrtError
from . import bench, convert, export, golden, info, serve, upscale, verify

COMMANDS = (upscale, golden, convert, info, export, verify, bench, serve)


def build_parser():
    p = argparse.ArgumentParser(prog="uavrt", description="Upscale-A-Video inference runtime")
    sub = p.add_subparsers(dest="cmd", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def _terminate(signum, frame):
    raise KeyboardInterrupt  # so every `finally` removes its temporary output


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import signal
    import threading
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except UavrtError as e:
        print(f"uavrt {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no partial output was kept", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
