"""Exceptions raised at the library's boundaries.

Every error names what was wrong: the parameter, the value, and what is allowed.
Library code raises these; only the CLI turns them into exit codes.
"""

from __future__ import annotations


class UavrtError(Exception):
    """Base class of every error uavrt raises on purpose."""


class ConfigError(UavrtError, ValueError):
    """A parameter has a value outside what is allowed."""

    def __init__(self, param: str, value, allowed: str, hint: str = ""):
        self.param, self.value, self.allowed, self.hint = param, value, allowed, hint
        msg = f"{param}={value!r} is not allowed: expected {allowed}"
        super().__init__(msg + (f" ({hint})" if hint else ""))

    def __reduce__(self):  # picklable, so it crosses process boundaries (Ray workers) intact
        return type(self), (self.param, self.value, self.allowed, self.hint)


class WeightsError(UavrtError):
    """Weights or configs are missing, incomplete or of the wrong shape/class."""


class InputError(UavrtError):
    """An input (video, frames, file) cannot be used."""


class TruncatedInputError(InputError):
    """The input ends before what its container announces (a cut download, a full disk)."""

    HINT = "pass --allow-truncated (allow_truncated=True) to upscale only the readable frames"

    def __init__(self, message: str, frames_read: int | None = None, frames_expected: int | None = None):
        self.frames_read, self.frames_expected = frames_read, frames_expected
        super().__init__(f"{message}; {self.HINT}")


class OutputExistsError(UavrtError, FileExistsError):
    """The output exists and overwriting was not asked for."""

    def __init__(self, path, why: str | None = None):
        self.path = path
        super().__init__(f"output {str(path)!r} " + (why or "already exists; pass overwrite=True (--overwrite) "
                                                          "to replace it"))

    def __reduce__(self):
        return type(self), (self.path,)


class BackendUnavailable(UavrtError):
    """An optional backend's package or hardware is missing; says what to install."""


class EngineMismatch(UavrtError):
    """An exported graph or engine does not match what it is used for."""


def check_range(param: str, value, lo, hi, *, integer: bool = False):
    """Raise ConfigError unless lo <= value <= hi (and an int when asked)."""
    import numbers
    if integer and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise ConfigError(param, value, f"an integer in [{lo}, {hi}]")
    if not integer and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ConfigError(param, value, f"a number in [{lo}, {hi}]")
    if not (lo <= value <= hi):
        raise ConfigError(param, value, f"a value in [{lo}, {hi}]")
    return value


def check_number(param: str, value, lo=None, hi=None):
    """A real number (int or float, not bool or str), optionally within [lo, hi]."""
    import math
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(param, value, "a finite number" + (f" in [{lo}, {hi}]" if lo is not None else ""))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(param, value, f"a value in [{lo}, {hi}]")
    return value


def check_type(param: str, value, types, what: str):
    """isinstance check with the same ConfigError as the value checks (bool is not an int)."""
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ConfigError(param, value, what)
    if not isinstance(value, types):
        raise ConfigError(param, value, what)
    return value


def check_choice(param: str, value, choices):
    if not isinstance(value, str) and not all(not isinstance(c, str) for c in choices):
        raise ConfigError(param, value, "one of " + ", ".join(repr(c) for c in choices))
    if value not in choices:
        raise ConfigError(param, value, "one of " + ", ".join(repr(c) for c in choices))
    return value
