"""`uavrt` command line: the only code that sees argparse.

Each command is a module with `add_parser(sub)` (its flags) and `run(args)` (flags -> frozen
configs -> library calls). Errors exit 2 with one line naming the parameter; no traceback for
expected errors.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import UavrtError
from . import bench, convert, export, golden, info, plan, serve, upscale, verify

COMMANDS = (upscale, golden, convert, info, export, verify, bench, serve, plan)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block) and exits 2 like every refusal."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    p = _Parser(prog="uavrt", description="Upscale-A-Video inference runtime")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # SIGHUP: the terminal is gone; the exit code still tells
        pass


class _StderrHandler(logging.StreamHandler):
    """The library's warnings on the current sys.stderr (looked up at each message)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("uavrt: %(message)s"))
        self.setLevel(logging.WARNING)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _log_to_stderr() -> None:
    log = logging.getLogger("uavrt")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
        if log.level == logging.NOTSET:
            log.setLevel(logging.WARNING)


def main(argv=None) -> int:
    from ..signals import Interrupted, interruptible
    args = build_parser().parse_args(argv)
    _log_to_stderr()
    try:
        with interruptible():  # SIGTERM / SIGHUP unwind like Ctrl-C, so temps are removed
            return args.func(args)
    except UavrtError as e:
        _say(f"uavrt {args.cmd}: error: {e}")
        return 2
    except (Interrupted, KeyboardInterrupt) as e:
        kept = ("; finished windows stay in the job folder: run the same command to resume"
                if args.cmd == "upscale" and not getattr(args, "no_job_state", True) else "")
        what = str(e) if isinstance(e, Interrupted) else "interrupted"
        _say(f"uavrt {args.cmd}: {what}; no partial output was kept{kept}")
        return e.exit_code if isinstance(e, Interrupted) else 130
