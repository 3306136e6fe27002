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


class OutputExistsError(UavrtError, FileExistsError):
    """The output exists and overwriting was not asked for."""

    def __init__(self, path):
        self.path = path
        super().__init__(f"output {str(path)!r} already exists; pass overwrite=True (--overwrite) to replace it")

    def __reduce__(self):
        return type(self), (self.path,)


class BackendUnavailable(UavrtError):
    """An optional backend's package or hardware is missing; says what to install."""


class EngineMismatch(UavrtError):
    """An exported graph or engine does not match what it is used for."""


def check_range(param: str, value, lo, hi, *, integer: bool = False):
    """Raise ConfigError unless lo <= value <= hi (and an int when asked)."""
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(param, value, f"an integer in [{lo}, {hi}]")
    if not (lo <= value <= hi):
        raise ConfigError(param, value, f"a value in [{lo}, {hi}]")
    return value


def check_choice(param: str, value, choices):
    if value not in choices:
        raise ConfigError(param, value, "one of " + ", ".join(repr(c) for c in choices))
    return value
