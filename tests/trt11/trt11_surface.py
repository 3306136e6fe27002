"""The API surface of an imported `tensorrt` module, as plain JSON-able data.

Read from the real module (pybind11 classes, their methods' docstring signatures, properties
with their getter's return type and whether they have a setter, enums and their members,
module functions). Runs only inside the contract subprocess (the module needs stub libraries).
"""

from __future__ import annotations

import inspect
import re

PREFIX = "tensorrt_bindings.tensorrt."
_SKIP = {"__doc__", "__module__", "__dict__", "__weakref__", "__del__", "__entries", "__members__",
         "__getstate__", "__setstate__", "__new__"}


def signatures(fn, name: str) -> list:
    """pybind11 signature lines of a callable ('name(self: T, a: int = 1) -> R'), one per overload."""
    doc = getattr(fn, "__doc__", None) or ""
    if not callable(fn):
        return []
    if isinstance(fn, type(lambda: 0)) or inspect.isfunction(getattr(fn, "__func__", fn)):
        f = getattr(fn, "__func__", fn)
        return [f"{name}{inspect.signature(f)}".replace("'", "")]
    lines = doc.splitlines()
    if len(lines) > 1 and lines[1].strip() == "Overloaded function.":
        return [m.group(1) for ln in lines if (m := re.match(rf"^\d+\. ({re.escape(name)}\(.*)$", ln))]
    if lines and lines[0].startswith(name + "("):
        return [lines[0]]
    return []


def _is_enum(obj) -> bool:
    return isinstance(obj, type) and "__members__" in vars(obj) and "__entries" in vars(obj)


def _member_ref(value):
    enum = type(value)
    return {"kind": "enum_member", "enum": enum.__qualname__, "member": value.name}


def _prop_type(prop) -> str:
    doc = (prop.fget.__doc__ or "") if prop.fget is not None else ""
    m = re.search(r"\)\s*->\s*(.+)$", doc.splitlines()[0] if doc else "")
    return m.group(1).strip() if m else "object"


def extract(trt) -> dict:
    out = {"version": trt.__version__, "classes": {}, "enums": {}, "functions": {}, "attrs": {}}
    enums = {}

    def add_enum(e):
        enums[e.__qualname__] = {"members": {k: int(v) for k, v in e.__members__.items()}}

    for name in dir(trt):
        obj = getattr(trt, name)
        if _is_enum(obj):
            add_enum(obj)
            out["attrs"][name] = {"kind": "enum_class", "enum": obj.__qualname__}
        elif isinstance(obj, type) and obj.__module__.startswith("tensorrt"):
            out["classes"][name] = _class(obj, add_enum)
        elif type(obj).__name__ in ("builtin_function_or_method", "function") and not name.startswith("_"):
            out["functions"][name] = signatures(obj, name)
        elif _is_enum(type(obj)):
            out["attrs"][name] = _member_ref(obj)
        elif name == "__version__":
            out["attrs"][name] = {"kind": "value", "value": obj}
    out["enums"] = enums
    return out


def _class(cls, add_enum) -> dict:
    c = {"bases": [b.__name__ for b in cls.__bases__ if b.__module__.startswith("tensorrt")],
         "methods": {}, "static": {}, "properties": {}, "attrs": {}}
    for name, v in vars(cls).items():
        if name in _SKIP or name.startswith("__pybind11"):
            continue
        if isinstance(v, property):
            c["properties"][name] = {"type": _prop_type(v), "writable": v.fset is not None}
        elif isinstance(v, staticmethod):
            c["static"][name] = signatures(v.__func__, name)
        elif type(v).__name__ == "instancemethod" or inspect.isfunction(v):
            c["methods"][name] = signatures(v, name)
        elif type(v).__name__ == "builtin_function_or_method":
            c["static"][name] = signatures(v, name)
        elif _is_enum(v):
            add_enum(v)
            c["attrs"][name] = {"kind": "enum_class", "enum": v.__qualname__}
        elif _is_enum(type(v)):
            c["attrs"][name] = _member_ref(v)
    return c
