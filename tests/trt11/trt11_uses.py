"""Every TensorRT attribute, call and keyword uavrt's source uses, found by walking its AST.

What is a TensorRT value is decided by rules, not guessed:
- the module: a name bound by `import tensorrt`, by `= require_tensorrt()`, or a parameter
  named `trt` (the builder and backend pass the module around under that name), and
  `self.trt`;
- objects: a name or attribute assigned from a TensorRT call whose real return annotation is a
  TensorRT class gets that class (`engine = self.runtime.deserialize_cuda_engine(...)` is an
  ICudaEngine, `ctx = self.context` aliases it); `ROLES` types only what inference cannot see
  (function parameters); `test_roles_table_matches_the_code` keeps it in sync with the code.
Chains (`trt.ExecutionContextAllocationStrategy.USER_MANAGED`), calls with their positional
count and keyword names, and `getattr(x, "CONST")` are checked against the surface.
`getattr` with a computed name must be listed in `DYNAMIC` with every value it can take.
"""

from __future__ import annotations

import ast
from pathlib import Path

from trt11_fake import PREFIX, parse_signature

ROLES = {  # parameters holding TensorRT objects
    "uavrt/runtime/trt_backend.py": {
        "engine": "ICudaEngine",  # TrtRunner.__init__(..., engine, ...)
        "context": "IExecutionContext",  # SharedActivationMemory.attach(context, size)
    },
}
# getattr(<TensorRT value>, <computed name>): every name it can take, per file and receiver
DYNAMIC = {
    ("uavrt/export/trt.py", "trt.HardwareCompatibilityLevel"): ("AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"),
}
# getattr(x, name, default) over a constant tuple of optional members is a probe, not a use
OPTIONAL_OK = {("uavrt/runtime/trt_backend.py", "trt.DataType")}


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


class Checker:
    def __init__(self, surface: dict):
        self.s = surface
        self.problems, self.uses, self.roles_seen = [], [], set()

    # resolve a dotted path below the module to what the surface says it is
    def resolve(self, parts: list):
        kind, name = "module", None
        for p in parts:
            if kind == "module":
                if p in self.s["classes"]:
                    kind, name = "class", p
                elif p in self.s["attrs"] and self.s["attrs"][p]["kind"] == "enum_class":
                    kind, name = "enum", self.s["attrs"][p]["enum"]
                elif p in self.s["attrs"]:
                    kind, name = "value", p
                elif p in self.s["functions"]:
                    kind, name = "function", p
                elif p.startswith("__") and p.endswith("__"):
                    kind, name = "value", p  # Python's own module attributes (__file__, __spec__)
                else:
                    return None, f"module tensorrt has no attribute {p!r}"
            elif kind == "class":
                found = self.member(name, p)
                if found is None:
                    return None, f"class {name} has no attribute {p!r}"
                kind, name = found
            elif kind == "enum":
                if p not in self.s["enums"][name]["members"]:
                    return None, f"enum {name} has no member {p!r}"
                kind, name = "value", f"{name}.{p}"
            else:
                return ("value", name), None  # attributes of members (.name, .value): Python's
        return (kind, name), None

    def member(self, cls: str, attr: str):
        todo = [cls]
        while todo:
            c = todo.pop(0)
            spec = self.s["classes"][c]
            if attr in spec["methods"] or attr in spec["static"]:
                return "method", (c, attr)
            if attr in spec["properties"]:
                tp = spec["properties"][attr]["type"]
                inner = tp[len(PREFIX):] if tp.startswith(PREFIX) else None
                return ("class", inner) if inner in self.s["classes"] else ("value", tp)
            if attr in spec["attrs"]:
                ref = spec["attrs"][attr]
                return ("enum", ref["enum"]) if ref["kind"] == "enum_class" else ("value", attr)
            todo += spec["bases"]
        return None

    def signatures(self, kind, name) -> list:
        if kind == "class":
            return self.s["classes"][name]["methods"].get("__init__", [])
        if kind == "method":
            c, m = name
            for klass in self._mro(c):
                spec = self.s["classes"][klass]
                if m in spec["methods"]:
                    return spec["methods"][m]
                if m in spec["static"]:
                    return spec["static"][m]
        if kind == "function":
            return self.s["functions"][name]
        return []

    def _mro(self, c):
        out, todo = [], [c]
        while todo:
            x = todo.pop(0)
            out.append(x)
            todo += self.s["classes"][x]["bases"]
        return out

    def check_call(self, where, what, kind, name, call: ast.Call):
        sigs = self.signatures(kind, name)
        if not sigs:
            if kind == "class":
                self.problems.append(f"{where}: {what}(...): {name} has no Python constructor")
            return
        npos = len(call.args)
        kws = [k.arg for k in call.keywords if k.arg is not None]
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return  # *args/**kwargs: arity unknown statically (the fake run checks it)
        for sig in sigs:
            params = parse_signature(sig)["params"][1:]  # self
            names = [p[0] for p in params]
            required = [p[0] for p in params if not p[2]]
            if npos <= len(params) and all(k in names[npos:] for k in kws) and \
                    all(r in names[:npos] or r in kws for r in required):
                return
        self.problems.append(f"{where}: {what}({npos} positional{', ' + ', '.join(k + '=' for k in kws) if kws else ''}) "
                             f"fits no signature of the real API: " + " | ".join(sigs))

    def check_file(self, path: Path, rel: str):
        tree = ast.parse(path.read_text(), filename=rel)
        module_names = {"self.trt"}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    (a.name == "tensorrt") for a in node.names) and not isinstance(node, ast.ImportFrom):
                module_names |= {a.asname or a.name for a in node.names if a.name == "tensorrt"}
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                    _dotted(node.value.func) in ("require_tensorrt",):
                module_names |= {d for t in node.targets if (d := _dotted(t))}
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                module_names |= {a.arg for a in node.args.args if a.arg == "trt"}
        roles = dict(ROLES.get(rel, {}))
        self._infer(tree, module_names, roles)
        parents = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and not isinstance(parents.get(node), ast.Attribute):
                self._chain(rel, node, parents, module_names, roles)
            if isinstance(node, ast.Call) and _dotted(node.func) == "getattr" and len(node.args) >= 2:
                self._getattr(rel, node, module_names, roles)

    def _infer(self, tree, module_names, roles):
        """Type assignment targets from the real return annotations (to a fixpoint)."""
        self.inferred = getattr(self, "inferred", set())
        changed = True
        while changed:
            changed = False
            for node in ast.walk(tree):
                if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                    continue
                target = _dotted(node.targets[0])
                if target is None or target in roles or target in module_names:
                    continue
                cls = self._value_class(node.value, module_names, roles)
                if cls:
                    roles[target] = cls
                    self.inferred.add(target)
                    changed = True

    def _value_class(self, value, module_names, roles):
        call = value if isinstance(value, ast.Call) else None
        dotted = _dotted(call.func if call else value)
        root = dotted and self._root(dotted, module_names, roles)
        if not root:
            return None
        (kind, name), rest, _ = root
        if kind == "class" and not rest and call is None:
            return name  # an alias of a typed receiver
        cur = (kind, name)
        for p in rest:
            if cur[0] == "class":
                cur = self.member(cur[1], p)
            elif cur[0] == "module":
                cur, _ = self.resolve([p])
            else:
                return None
            if cur is None:
                return None
        if call is not None and cur[0] == "class":
            return cur[1]  # a constructor: trt.Runtime(logger)
        if call is not None and cur[0] == "method":
            rets = {parse_signature(sig)["ret"] for sig in self.signatures("method", cur[1])}
            classes = {r[len(PREFIX):] for r in rets if r.startswith(PREFIX)} & set(self.s["classes"])
            return classes.pop() if len(classes) == 1 else None
        if call is None and cur[0] == "class" and rest:
            return cur[1]  # a property typed as a TensorRT class
        return None

    def _root(self, dotted: str, module_names, roles):
        """(surface path start, rest of the parts) for a TensorRT receiver, else None."""
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            head = ".".join(parts[:n])
            if head in module_names:
                return ("module", None), parts[n:], head
            if head in roles:
                return ("class", roles[head]), parts[n:], head
        return None

    def _chain(self, rel, node, parents, module_names, roles):
        dotted = _dotted(node)
        if dotted is None:
            return
        root = self._root(dotted, module_names, roles)
        if root is None or not root[1]:
            return
        (kind, name), rest, head = root
        if kind == "class" and head in ROLES.get(rel, {}):
            self.roles_seen.add((rel, head))
        where = f"{rel}:{node.lineno}"
        self.uses.append(f"{rel}: {dotted}")
        cur = (kind, name)
        for i, p in enumerate(rest):
            if cur[0] == "module":
                res, err = self.resolve([p])
            elif cur[0] == "class":
                m = self.member(cur[1], p)
                res, err = (m, None) if m else (None, f"class {cur[1]} has no attribute {p!r}")
            elif cur[0] == "enum":
                res, err = (("value", p), None) if p in self.s["enums"][cur[1]]["members"] else \
                    (None, f"enum {cur[1]} has no member {p!r}")
            else:
                break
            if err:
                self.problems.append(f"{where}: {dotted}: {err}")
                return
            cur = res
        parent = parents.get(node)
        if isinstance(parent, ast.Call) and parent.func is node and cur[0] in ("class", "method", "function"):
            self.check_call(where, dotted, cur[0], cur[1], parent)
        if isinstance(parent, ast.Assign) and node in parent.targets and cur[0] != "method":
            self._check_writable(where, dotted, rest, kind, name)

    def _check_writable(self, where, dotted, rest, kind, name):
        if kind != "class" or len(rest) != 1:
            return
        for klass in self._mro(name):
            prop = self.s["classes"][klass]["properties"].get(rest[0])
            if prop is not None:
                if not prop["writable"]:
                    self.problems.append(f"{where}: {dotted} is assigned but {klass}.{rest[0]} is read-only")
                return

    def _getattr(self, rel, call, module_names, roles):
        target = _dotted(call.args[0])
        if target is None:
            return
        root = self._root(target, module_names, roles)
        if root is None:
            return
        name_node = call.args[1]
        if isinstance(name_node, ast.Constant) and isinstance(name_node.value, str):
            names = [name_node.value]
        elif (rel, target) in DYNAMIC:
            names = list(DYNAMIC[(rel, target)])
        elif len(call.args) == 3 and (rel, target) in OPTIONAL_OK:
            return
        else:
            self.problems.append(f"{rel}:{call.lineno}: getattr({target}, <computed>) is not listed in DYNAMIC")
            return
        (kind, name), rest, _ = root
        base = rest if kind == "module" else None
        for n in names:
            if base is not None:
                _, err = self.resolve(base + [n])
            else:
                err = None if self.member(name, n) else f"class {name} has no attribute {n!r}"
            if err:
                self.problems.append(f"{rel}:{call.lineno}: getattr({target}, {n!r}): {err}")


def check_tree(surface: dict, root: Path, files=None) -> Checker:
    c = Checker(surface)
    root = Path(root)
    for path in sorted(files or (root / "uavrt").rglob("*.py")):
        path = Path(path)
        c.check_file(path, path.relative_to(root).as_posix() if path.is_absolute() else str(path))
    return c
