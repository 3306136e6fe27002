"""Strict fakes of the `tensorrt` module, generated from the real module's surface (trt11_surface.py).

- every class, enum, member, method and property of the real 11.x API exists, nothing else:
  a missing attribute raises AttributeError (on the module, a class, an enum or an instance),
  setting an attribute the real class lacks or a read-only property raises AttributeError;
- every call is bound against the real pybind11 signatures (all overloads): arity, keyword
  names and, where the annotation is a TensorRT class/enum or int/float/bool/str, the type;
  no overload fits -> TypeError, as pybind11 raises;
- behaviour comes from `overlays` ({"Class.member": fn(self, *args)}) given by the scenario;
  without one a call returns a default of its annotated return type (a new fake object, the
  enum's first member, 0, True, "", None).
Every call is appended to `module._calls` as (qualname, args, kwargs).
"""

from __future__ import annotations

import types

PREFIX = "tensorrt_bindings.tensorrt."
_OPEN = "([{<"
_CLOSE = ")]}>"


# --- signatures -------------------------------------------------------------------------------
def _split_top(text: str, sep: str = ",") -> list:
    out, depth, cur = [], 0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE and not (ch == ">" and i > 0 and text[i - 1] == "-"):
            depth -= 1
        if depth == 0 and text.startswith(sep, i):
            out.append(cur)
            cur = ""
            i += len(sep)
            continue
        cur += ch
        i += 1
    if cur.strip():
        out.append(cur)
    return out


def parse_signature(sig: str) -> dict:
    """'name(self: T, a: int = 1, *, b) -> R' -> {name, params: [(name, type, has_default)], ret}."""
    start = sig.index("(")
    depth, end = 0, None
    for i in range(start, len(sig)):
        if sig[i] in "([":
            depth += 1
        elif sig[i] in ")]":
            depth -= 1
            if depth == 0:
                end = i
                break
    params = []
    for p in _split_top(sig[start + 1:end]):
        p = p.strip()
        if p in ("*", "/"):
            continue
        default = None
        parts = _split_top(p, " = ") if " = " in p else [p]
        if len(parts) > 1:
            p, default = parts[0].strip(), parts[1].strip()
        elif "=" in p and ":" not in p:  # python function without annotations
            p, default = p.split("=", 1)
        name, _, tp = p.partition(":")
        params.append((name.strip(), tp.strip() or "object", default is not None))
    ret = sig[end + 1:].strip()
    return {"name": sig[:start], "params": params, "ret": ret[2:].strip() if ret.startswith("->") else "object"}


class Fakes:
    """The generated classes and enums, by name; `module` is the fake `tensorrt` module."""

    def __init__(self, surface: dict, overlays: dict | None = None, buffer_classes=("IHostMemory",)):
        self.surface, self.overlays = surface, dict(overlays or {})
        self.version = surface["version"]
        self.calls = []
        self.enums = {q: self._make_enum(q, e["members"]) for q, e in surface["enums"].items()}
        self.classes = {}
        for name in surface["classes"]:
            self._make_class(name, buffer_classes)
        self.module = self._make_module()

    # enums
    def _make_enum(self, qualname: str, members: dict):
        fakes = self

        class Meta(type):
            def __getattr__(cls, name):
                raise AttributeError(f"TensorRT {fakes.version}: enum {qualname} has no member {name!r}")

        def init(self, value):
            raise TypeError(f"fake enum {qualname}: construct members by name")

        ns = {"__init__": init, "__repr__": lambda s: f"<{qualname.split('.')[-1]}.{s.name}: {s.value}>",
              "__str__": lambda s: f"{qualname.split('.')[-1]}.{s.name}",
              "__eq__": lambda s, o: type(o) is type(s) and o.value == s.value,
              "__hash__": lambda s: hash((qualname, s.value)), "__int__": lambda s: s.value,
              "__index__": lambda s: s.value, "__qualname__": qualname}
        cls = Meta(qualname.split(".")[-1], (), ns)
        table = {}
        for k, v in members.items():
            m = object.__new__(cls)
            m.name, m.value = k, v
            table[k] = m
            setattr(cls, k, m)
        cls.__members__ = table
        cls._fake_enum = qualname
        return cls

    def member(self, ref: dict):
        return self.enums[ref["enum"]].__members__[ref["member"]]

    def _attr_value(self, ref: dict):
        if ref["kind"] == "enum_class":
            return self.enums[ref["enum"]]
        if ref["kind"] == "enum_member":
            return self.member(ref)
        return ref.get("value")

    # classes
    def _make_class(self, name: str, buffer_classes):
        if name in self.classes:
            return self.classes[name]
        spec = self.surface["classes"][name]
        bases = tuple(self._make_class(b, buffer_classes) for b in spec["bases"]) or (StrictFake,)
        if name in buffer_classes:
            # the real class has the C buffer protocol (bytes(), file.write), which introspection
            # cannot see and a Python class can only get from bytes
            bases = (bytes,) + bases
        fakes = self
        ns = {"_fake_name": name, "_fakes": self, "__qualname__": name}
        for m, sigs in spec["methods"].items():
            if m.startswith("_pybind11"):
                continue
            ns[m] = self._method(name, m, sigs)
        for m, sigs in spec["static"].items():
            ns[m] = staticmethod(self._function(f"{name}.{m}", sigs))
        for p, info in spec["properties"].items():
            ns[p] = self._property(name, p, info)
        for a, ref in spec["attrs"].items():
            ns[a] = self._attr_value(ref)
        if "__init__" not in ns or not spec["methods"].get("__init__"):
            def no_init(self_, *a, **k):
                raise TypeError(f"TensorRT {fakes.version}: {name} cannot be instantiated from Python "
                                "(no constructor defined)")
            ns["__init__"] = no_init
        if "__eq__" in ns and "__hash__" not in ns:
            ns["__hash__"] = lambda s: id(s)
        cls = _ClassMeta(name, bases, ns)
        self.classes[name] = cls
        return cls

    def new(self, cls_name: str, **state):
        """A fake instance made the way TensorRT makes it (not through the Python constructor)."""
        cls = self.classes[cls_name]
        obj = cls.__new__(cls, state.pop("_bytes", b"")) if issubclass(cls, bytes) else object.__new__(cls)
        object.__setattr__(obj, "_state", dict(state))
        return obj

    def _lookup_overlay(self, cls_name: str, member: str):
        seen = [cls_name]
        while seen:
            c = seen.pop(0)
            fn = self.overlays.get(f"{c}.{member}")
            if fn is not None:
                return fn
            seen += self.surface["classes"][c]["bases"]
        return None

    def _method(self, cls_name: str, member: str, sigs: list):
        parsed = [parse_signature(s) for s in sigs]
        fakes = self

        def method(self_, *args, **kwargs):
            owner = type(self_)._fake_name
            sig = fakes._bind(f"{owner}.{member}", parsed, (self_,) + args, kwargs)
            fakes.calls.append((f"{owner}.{member}", args, kwargs))
            fn = fakes._lookup_overlay(owner, member)
            if fn is not None:
                return fn(self_, *args, **kwargs)
            if member == "__init__":
                if "_state" not in self_.__dict__:
                    object.__setattr__(self_, "_state", {})
                return None
            if member == "__enter__":  # the real one is the module's Python common_enter: returns the object
                return self_
            return fakes.default(sig["ret"])

        method.__name__ = member
        return method

    def _function(self, qualname: str, sigs: list):
        parsed = [parse_signature(s) for s in sigs]
        fakes = self

        def function(*args, **kwargs):
            sig = fakes._bind(qualname, parsed, args, kwargs)
            fakes.calls.append((qualname, args, kwargs))
            fn = fakes.overlays.get(qualname)
            return fn(*args, **kwargs) if fn is not None else fakes.default(sig["ret"])

        function.__name__ = qualname.rsplit(".", 1)[-1]
        return function

    def _property(self, cls_name: str, prop: str, info: dict):
        fakes = self

        def get(self_):
            state = self_.__dict__.get("_state", {})
            if prop in state:
                return state[prop]
            fn = fakes._lookup_overlay(type(self_)._fake_name, prop)
            return fn(self_) if fn is not None else fakes.default(info["type"])

        def set_(self_, value):
            if not fakes.accepts(info["type"], value):
                raise TypeError(f"TensorRT {fakes.version}: {cls_name}.{prop} takes {info['type']}, "
                                f"got {type(value).__name__} {value!r}")
            fakes.calls.append((f"{cls_name}.{prop}=", (value,), {}))
            self_.__dict__.setdefault("_state", {})[prop] = value

        return property(get, set_ if info["writable"] else None)

    # calls
    def _bind(self, qualname: str, overloads: list, args: tuple, kwargs: dict) -> dict:
        if not overloads:
            raise TypeError(f"TensorRT {self.version}: {qualname} has no Python signature")
        for sig in overloads:
            if self._fits(sig, args, kwargs):
                return sig
        raise TypeError(f"TensorRT {self.version}: {qualname}(): incompatible function arguments "
                        f"{_show(args[1:] if overloads[0]['params'][:1] and overloads[0]['params'][0][0] in ('self', 'this') else args, kwargs)}; "
                        "the supported signatures are:\n  " + "\n  ".join(
                            f"{s['name']}({', '.join(p[0] + ': ' + p[1] for p in s['params'])}) -> {s['ret']}"
                            for s in overloads))

    def _fits(self, sig: dict, args: tuple, kwargs: dict) -> bool:
        params = sig["params"]
        if any(p[0].startswith("*") for p in params):
            fixed = [p for p in params if not p[0].startswith("*")]
            return len(args) >= len([p for p in fixed if not p[2]]) or True
        if len(args) > len(params):
            return False
        bound = {}
        for (name, tp, _), v in zip(params, args):
            bound[name] = (tp, v)
        for k, v in kwargs.items():
            match = [p for p in params if p[0] == k]
            if not match or k in bound:
                return False
            bound[k] = (match[0][1], v)
        if any(not has_default and name not in bound for name, _, has_default in params):
            return False
        first = params[0][0] if params else None
        return all(self.accepts(tp, v) for k, (tp, v) in bound.items() if k not in ("self", "this") or k != first)

    def accepts(self, tp: str, v) -> bool:
        tp = tp.strip()
        if tp.startswith(PREFIX):
            name = tp[len(PREFIX):]
            if name in self.enums:
                return isinstance(v, self.enums[name])
            if name in self.classes:
                if name.startswith("Dims") and isinstance(v, (tuple, list)):
                    return all(isinstance(d, int) for d in v)  # pybind11 converts sequences to Dims
                return v is None or isinstance(v, self.classes[name])
            return True
        if tp in ("typing.SupportsInt", "int"):
            return (isinstance(v, int) or hasattr(type(v), "__index__")) and not isinstance(v, (float, str))
        if tp in ("typing.SupportsFloat", "float"):
            return isinstance(v, (int, float)) and not isinstance(v, bool) or hasattr(type(v), "__float__")
        if tp == "bool":
            return isinstance(v, bool) or type(v).__name__ == "bool_"
        if tp == "str":
            return isinstance(v, str)
        if tp in ("typing_extensions.Buffer", "buffer"):
            try:
                memoryview(v)
                return True
            except TypeError:
                return False
        return True

    def default(self, tp: str):
        tp = tp.strip()
        if tp in ("None", "object", ""):
            return None
        if tp.startswith(PREFIX):
            name = tp[len(PREFIX):]
            if name in self.enums:
                return next(iter(self.enums[name].__members__.values()))
            if name in self.classes:
                return self.new(name)
            return None
        return {"bool": True, "int": 0, "float": 0.0, "str": ""}.get(tp)

    # module
    def _make_module(self):
        mod = types.ModuleType("tensorrt")
        fakes = self
        for name, cls in self.classes.items():
            setattr(mod, name, cls)
        for name, sigs in self.surface["functions"].items():
            setattr(mod, name, self._function(name, sigs))
        for name, ref in self.surface["attrs"].items():
            setattr(mod, name, self._attr_value(ref))
        mod.__version__ = self.version
        mod._fakes = self

        def missing(attr):
            raise AttributeError(f"TensorRT {fakes.version}: module tensorrt has no attribute {attr!r}")

        mod.__getattr__ = missing
        return mod


class _ClassMeta(type):
    def __getattr__(cls, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        raise AttributeError(f"TensorRT {cls._fakes.version}: class {cls._fake_name} has no attribute {attr!r}")


class StrictFake:
    """Base of every generated class: no attribute beyond the real class's."""

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"TensorRT {type(self)._fakes.version}: {type(self)._fake_name} object has no "
                             f"attribute {name!r}")

    def __setattr__(self, name, value):
        for klass in type(self).__mro__:
            if name in vars(klass) and isinstance(vars(klass)[name], property):
                if vars(klass)[name].fset is None:
                    raise AttributeError(f"TensorRT {type(self)._fakes.version}: {type(self)._fake_name}."
                                         f"{name} is read-only")
                return vars(klass)[name].__set__(self, value)
        raise AttributeError(f"TensorRT {type(self)._fakes.version}: {type(self)._fake_name} object has no "
                             f"attribute {name!r} (pybind11 objects take no new attributes)")


def _show(args, kwargs) -> str:
    parts = [type(a).__name__ for a in args] + [f"{k}={type(v).__name__}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"
