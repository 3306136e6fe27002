"""The TensorRT 11 contract, run in a subprocess of the test suite (never in pytest's process).

Usage: python trt11_driver.py OUT.json REPO [PHASE ...]; a phase is
  main               uavrt as it is;
  inject:NAME        a copy of uavrt with one line rewritten to use an API TensorRT 11 removed
                     (INJECTIONS); the contract must fail;
  polygraphy:DIR     another Polygraphy release first on sys.path (0.49.x reads precision_is_set).
It imports the real `tensorrt` (bindings + stub libraries, see trt11_stubs.py), reads its
surface, and per phase
  static:  checks every TensorRT use in uavrt's source against it (trt11_uses.py);
  build:   runs uavrt.export.trt.build_engines -> the real Polygraphy loaders -> a strict fake
           of TensorRT generated from the surface (trt11_fake.py);
  runtime: (main) runs TrtBackend / TrtRunner on the engine that build wrote, against the same
           fakes, with torch's CUDA stream API faked (CPU tensors stand in for device memory);
  info:    what uavrt.info says about the real module loaded on stub libraries.
Writes {phase: results} as JSON to OUT.json. One process: torch/onnx import once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

import trt11_fake as fake
import trt11_surface as surface_mod
import trt11_uses as uses

# name -> (file, original text, replacement): each introduces a use of an API TensorRT 11 removed
INJECTIONS = {
    "builder_flag_fp16": ("uavrt/export/trt.py", "    pools = None\n",
                          "    pools = None\n    fp16_flag = trt.BuilderFlag.FP16  # injected: removed in TensorRT 11\n"),
    "layer_precision": ("uavrt/export/trt.py", "    data = EngineBytesFromNetwork(",
                        "    builder_, net_, parser_ = network()\n"
                        "    for layer in net_:\n"
                        "        layer.precision = trt.float16  # injected: ILayer.precision is gone in TensorRT 11\n"
                        "    network = (builder_, net_, parser_)\n"
                        "    data = EngineBytesFromNetwork("),
    # execute_async_v2 was removed in TensorRT 10
    "execute_async_v2": ("uavrt/runtime/trt_backend.py", "self.context.execute_async_v3(stream.cuda_stream)",
                         "self.context.execute_async_v2([], stream.cuda_stream)"),
    # a keyword the real signature does not have (it is `shape`)
    "wrong_keyword": ("uavrt/runtime/trt_backend.py", "ctx.set_input_shape(name, tuple(x.shape))",
                      "ctx.set_input_shape(name, dims=tuple(x.shape))"),
}


def run(out_path: str, repo: str, phases: list):
    """phases: 'main', 'inject:NAME', 'polygraphy:DIR' -- one process, modules purged in between."""
    import tensorrt as real  # the real bindings on stub libraries

    surf = surface_mod.extract(real)
    results = {}
    for phase in phases:
        kind, _, arg = phase.partition(":")
        root = _inject(Path(repo), arg) if kind == "inject" else Path(repo)
        for m in [m for m in sys.modules if m.split(".")[0] in ("uavrt", "polygraphy")]:
            sys.modules.pop(m)
        sys.path[:] = [p for p in sys.path if p not in _ADDED]
        _ADDED[:] = [str(root)] + ([arg] if kind == "polygraphy" else [])
        sys.path[:0] = _ADDED
        results[phase] = _phase(real, surf, root)
    Path(out_path).write_text(json.dumps(results, indent=1, default=str))


_ADDED: list = []


def _phase(real, surf, repo: Path) -> dict:
    result = {"module_file": getattr(sys.modules["tensorrt_bindings.tensorrt"], "__file__", None),
              "surface_counts": {k: len(surf[k]) for k in ("classes", "enums", "functions")},
              "version": surf["version"]}
    sys.modules["tensorrt"] = real
    result["info"] = _info(real)
    checker = uses.check_tree(surf, repo)
    result["static"] = {"problems": checker.problems, "uses": sorted(set(checker.uses)),
                        "roles_seen": sorted(f"{f}:{r}" for f, r in checker.roles_seen),
                        "roles": sorted(f"{f}:{r}" for f, roles in uses.ROLES.items() for r in roles)}
    fakes = fake.Fakes(surf, _overlays())
    sys.modules["tensorrt"] = fakes.module  # uavrt and Polygraphy import this from now on
    work = Path(tempfile.mkdtemp(prefix="trt11-contract-"))
    result["build"] = _guard(_build, fakes, work)
    if result["build"].get("ok"):
        result["runtime"] = _guard(_runtime, fakes, work)
    sys.modules["tensorrt"] = real
    return result


def _guard(fn, *args) -> dict:
    try:
        return {"ok": True, **fn(*args)}
    except BaseException as e:  # noqa: BLE001 -- reported to the test, which decides
        return {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}


def _info(real) -> dict:
    from uavrt import info

    report = {"tensorrt": info._tensorrt_info()}
    gpu = {"torch": {"version": "2", "cuda_build": "13.0", "cuda_available": True,
                     "devices": [{"index": 0, "name": "Fake GPU", "compute_capability": "9.0", "memory_gib": 80}]},
           "onnxruntime": {"version": None}, "tensorrt": report["tensorrt"], "nvrtc": {"version": None},
           "gxx": {"path": None}}
    report["usable_with_a_gpu"] = info.usable_backends(gpu)["tensorrt"]
    from uavrt.errors import BackendUnavailable
    from uavrt.trt_env import require_tensorrt

    try:
        require_tensorrt()
        report["require_tensorrt"] = "accepted"
    except BackendUnavailable as e:
        report["require_tensorrt"] = f"BackendUnavailable: {e}"
    return report


def _inject(repo: Path, name: str) -> Path:
    """A private copy of the package with one line changed; the checkout stays untouched."""
    import shutil

    rel, old, new = INJECTIONS[name]
    text = (repo / rel).read_text()
    if old not in text:
        raise SystemExit(f"injection {name}: {old!r} not found in {rel}")
    tmp = Path(tempfile.mkdtemp(prefix="trt11-inject-"))
    shutil.copytree(repo / "uavrt", tmp / "uavrt", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / rel).write_text(text.replace(old, new, 1))
    return tmp


# --- the fake TensorRT's behaviour ------------------------------------------------------------
def _overlays() -> dict:
    def parse_from_file(self, path):
        import onnx

        m = onnx.load(path, load_external_data=False)
        f = self._state["fakes"]
        net = self._state["network"]
        dt = {1: "FLOAT", 10: "HALF", 7: "INT64", 6: "INT32", 9: "BOOL", 16: "BF16"}

        def tensor(v, kind):
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim)
            return f.new("ITensor", name=v.name, shape=f.new("Dims", _shape=dims),
                         dtype=f.enums["DataType"].__members__[dt[v.type.tensor_type.elem_type]],
                         is_network_input=kind == "in", is_network_output=kind == "out", is_shape_tensor=False)

        init = {t.name for t in m.graph.initializer}
        net._state["inputs"] = [tensor(v, "in") for v in m.graph.input if v.name not in init]
        net._state["outputs"] = [tensor(v, "out") for v in m.graph.output]
        layer_type = f.enums["LayerType"].__members__
        net._state["layers"] = [f.new("ILayer", name=n.name or n.op_type, type=layer_type["CONVOLUTION" if n.op_type == "Conv" else "ELEMENTWISE"],
                                      num_inputs=len(n.input), num_outputs=len(n.output)) for n in m.graph.node]
        return True

    def parser_init(self, network, logger):
        object.__setattr__(self, "_state", {"network": network, "fakes": type(self)._fakes})

    def items(key):
        def get(self, i):
            seq = self._state.get(key, [])
            if not 0 <= i < len(seq):
                raise IndexError(i)
            return seq[i]
        return get

    def count(key):
        return lambda self: len(self._state.get(key, []))

    def dims_init(self, shape=()):
        object.__setattr__(self, "_state", {"_shape": tuple(shape)})

    def set_shape(self, name, lo, opt, hi):
        self._state.setdefault("shapes", {})[name] = [list(lo), list(opt), list(hi)]

    def add_profile(self, profile):
        self._state.setdefault("profiles", []).append(profile._state.get("shapes", {}))
        return len(self._state["profiles"]) - 1

    def build(self, network, config):
        f = type(self)._fakes
        io = [[t._state["name"], "INPUT", t._state["dtype"].name, list(t._state["shape"]._state["_shape"])]
              for t in network._state["inputs"]]
        io += [[t._state["name"], "OUTPUT", t._state["dtype"].name, list(t._state["shape"]._state["_shape"])]
               for t in network._state["outputs"]]
        settings = {k: (v.name if hasattr(v, "name") and not isinstance(v, str) else v)
                    for k, v in config._state.items() if k != "profiles"}
        plan = {"io": io, "profiles": config._state.get("profiles", []), "config": settings}
        return f.new("IHostMemory", _bytes=json.dumps(plan).encode())

    def deserialize(self, data):
        f = type(self)._fakes
        plan = json.loads(bytes(data))
        return f.new("ICudaEngine", plan=plan)

    def engine(attr):
        def get(self, *args):
            plan = self._state["plan"]
            f = type(self)._fakes
            io = {t[0]: t for t in plan["io"]}
            if attr == "num_io_tensors":
                return len(plan["io"])
            if attr == "device_memory_size_v2":
                return 1 << 20
            name = args[0]
            if attr == "get_tensor_name":
                return plan["io"][name][0]
            if attr == "get_tensor_mode":
                return f.enums["TensorIOMode"].__members__[io[name][1]]
            if attr == "get_tensor_dtype":
                return f.enums["DataType"].__members__[io[name][2]]
            if attr == "get_tensor_shape":
                return f.new("Dims", _shape=tuple(io[name][3]))
        return get

    def create_context(self, strategy=None):
        f = type(self)._fakes
        return f.new("IExecutionContext", engine=self, shapes={}, addresses={}, device_memory=None,
                     strategy=getattr(strategy, "name", None))

    def set_input_shape(self, name, shape):
        self._state["shapes"][name] = tuple(shape)
        return True

    def set_device_memory(self, ptr, size):
        self._state["device_memory"] = (ptr, size)

    def set_tensor_address(self, name, ptr):
        self._state["addresses"][name] = ptr
        return True

    def ctx_shape(self, name):
        f = type(self)._fakes
        s = self._state["shapes"]
        if name in s:
            return f.new("Dims", _shape=s[name])
        if name == "noise_pred":  # the stand-ins' shape rules
            return f.new("Dims", _shape=s["sample"])
        n, _, h, w = s["image1"]
        return f.new("Dims", _shape=(n, 2, h, w) if name == "flow_up" else (n, 2, h // 8, w // 8))

    def execute(self, handle):
        st = self._state
        plan = st["engine"]._state["plan"]
        missing = [t[0] for t in plan["io"] if t[0] not in st["addresses"]]
        if missing or st["device_memory"] is None:
            raise RuntimeError(f"enqueue without addresses for {missing} / device memory")
        st.setdefault("handles", []).append(int(handle))
        # compute the stand-ins through the bound addresses (this is where wrong bindings show):
        # RAFT: flow_up = image1 - image2 (first 2 channels), flow_low = 0; U-Net: noise_pred = sample
        view = lambda name, k, ct=ctypes.c_float: np.ctypeslib.as_array((ct * k).from_address(st["addresses"][name]))  # noqa: E731
        if "sample" in st["shapes"]:
            k = int(np.prod(st["shapes"]["sample"]))
            view("noise_pred", k, ctypes.c_uint16)[:] = view("sample", k, ctypes.c_uint16)  # fp16 bits
            return True
        n, c, h, w = st["shapes"]["image1"]
        a, b = view("image1", n * c * h * w), view("image2", n * c * h * w)
        up = view("flow_up", n * 2 * h * w)
        up[:] = (a.reshape(n, c, h, w)[:, :2] - b.reshape(n, c, h, w)[:, :2]).reshape(-1)
        view("flow_low", n * 2 * (h // 8) * (w // 8))[:] = 0
        return True

    return {
        "OnnxParser.__init__": parser_init, "OnnxParser.parse_from_file": parse_from_file,
        "INetworkDefinition.num_inputs": count("inputs"), "INetworkDefinition.num_outputs": count("outputs"),
        "INetworkDefinition.num_layers": count("layers"), "INetworkDefinition.__len__": count("layers"),
        "INetworkDefinition.get_input": items("inputs"), "INetworkDefinition.get_output": items("outputs"),
        "INetworkDefinition.get_layer": items("layers"), "INetworkDefinition.__getitem__": items("layers"),
        "Dims.__init__": dims_init, "Dims.__len__": lambda self: len(self._state["_shape"]),
        "Dims.__getitem__": lambda self, i: self._state["_shape"][i],
        "Dims.__eq__": lambda self, o: tuple(self._state["_shape"]) == tuple(o),
        "Dims.__repr__": lambda self: f"Dims{self._state['_shape']}",
        "Dims.__str__": lambda self: str(self._state["_shape"]),
        "IOptimizationProfile.set_shape": set_shape,
        "IBuilderConfig.add_optimization_profile": add_profile,
        "Builder.build_serialized_network": build,
        "Runtime.deserialize_cuda_engine": deserialize,
        **{f"ICudaEngine.{a}": engine(a) for a in ("num_io_tensors", "device_memory_size_v2", "get_tensor_name",
                                                   "get_tensor_mode", "get_tensor_dtype", "get_tensor_shape")},
        "ICudaEngine.create_execution_context": create_context,
        "IExecutionContext.set_input_shape": set_input_shape, "IExecutionContext.set_device_memory": set_device_memory,
        "IExecutionContext.set_tensor_address": set_tensor_address, "IExecutionContext.get_tensor_shape": ctx_shape,
        "IExecutionContext.execute_async_v3": execute,
    }


# --- the scenarios ------------------------------------------------------------------------------
def _tiny_raft(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
    v = helper.make_tensor_value_info
    ins = [v("image1", TensorProto.FLOAT, ["N", 3, "H", "W"]), v("image2", TensorProto.FLOAT, ["N", 3, "H", "W"])]
    outs = [v("flow_low", TensorProto.FLOAT, ["N", 2, "H8", "W8"]), v("flow_up", TensorProto.FLOAT, ["N", 2, "H", "W"])]
    nodes = [helper.make_node("Sub", ["image1", "image2"], ["d"], name="sub"),
             helper.make_node("Conv", ["d", "w"], ["flow_up"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("AveragePool", ["flow_up"], ["flow_low"], kernel_shape=[8, 8], strides=[8, 8], name="pool")]
    m = helper.make_model(helper.make_graph(nodes, "tiny_raft", ins, outs, [w]),
                          opset_imports=[helper.make_opsetid("", 21)])
    for k, val in {"uavrt.network": "raft", "uavrt.precision": "fp16"}.items():
        m.metadata_props.add(key=k, value=val)
    onnx.save_model(m, str(path))


def _tiny_unet(path):
    """FP16 graph with the U-Net's I/O (int64 scalar timestep and labels): noise_pred = sample + ..."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    F, v, n = TensorProto.FLOAT16, helper.make_tensor_value_info, helper.make_node
    ins = [v("sample", F, ["B", 4, "T", "H", "W"]), v("timestep", TensorProto.INT64, []),
           v("low_res", F, ["B", 3, "T", "H", "W"]), v("encoder_hidden_states", F, ["B", "L", "C"]),
           v("class_labels", TensorProto.INT64, ["B"])]
    consts = [numpy_helper.from_array(np.array([1], np.int64), "ax1")]
    nodes = [n("Cast", ["timestep"], ["t16"], to=F, name="cast_t"), n("Mul", ["sample", "t16"], ["a"], name="mul"),
             n("ReduceMean", ["low_res", "ax1"], ["lr"], keepdims=1, name="mean"),
             n("Add", ["a", "lr"], ["noise_pred"], name="add")]
    m = helper.make_model(helper.make_graph(nodes, "tiny_unet", ins, [v("noise_pred", F, ["B", 4, "T", "H", "W"])],
                                            consts), opset_imports=[helper.make_opsetid("", 21)])
    for k, val in {"uavrt.network": "unet", "uavrt.precision": "fp16"}.items():
        m.metadata_props.add(key=k, value=val)
    onnx.save_model(m, str(path))


def _patch_gpu():
    import uavrt.export.trt as build_mod
    import uavrt.runtime.trt_backend as backend_mod

    ident = lambda device=None: ("Fake GPU", "9.0")  # noqa: E731  (no GPU here; the manifest records it)
    build_mod.gpu_identity = backend_mod.gpu_identity = ident


PLAN_KW = dict(raft_pairs=2, raft_min=(128, 128), raft_opt=(128, 128), raft_max=(256, 256),
               cfg_batch=2, clip_frames=4, min_clip_frames=1, latent_min=(16, 16), latent_opt=(32, 32),
               latent_max=(64, 64), text_len=7, text_dim=32)


def _build(fakes, work: Path) -> dict:
    from uavrt.export.profiles import ProfilePlan
    from uavrt.export.trt import build_engines
    import polygraphy

    _patch_gpu()
    (work / "onnx").mkdir()
    _tiny_raft(work / "onnx" / "raft.fp16.onnx")
    _tiny_unet(work / "onnx" / "unet.fp16.onnx")
    start = len(fakes.calls)
    entries = build_engines(work / "onnx", work / "engines", plan=ProfilePlan(**PLAN_KW), optimization_level=1,
                            workspace_gb=1, hardware_compatible=True, version_compatible=True,
                            timing_cache=work / "timing.cache")
    plans = {e["fields"]["network"]: json.loads((work / "engines" / e["file"]).read_bytes()) for e in entries}
    calls = sorted({c[0] for c in fakes.calls[start:]})
    return {"polygraphy": polygraphy.__version__, "plan": plans["raft"], "plans": plans, "calls": calls,
            "timing_cache_written": (work / "timing.cache").exists()}


class _Stream:
    """torch.cuda.Stream's part the backend uses; handles are fake (no CUDA here)."""
    next_handle = 0x7000
    events: list = []

    def __init__(self, device=None, handle=None):
        if handle is None:
            handle, _Stream.next_handle = _Stream.next_handle, _Stream.next_handle + 0x10
        self.cuda_stream = handle

    def wait_stream(self, other):
        _Stream.events.append(("wait", self.cuda_stream, other.cuda_stream))


def _fake_torch_cuda():
    import torch

    current = [_Stream(handle=0)]  # torch's default stream reports handle 0

    @contextlib.contextmanager
    def stream(s):
        current.append(s)
        try:
            yield s
        finally:
            current.pop()

    torch.cuda.current_stream = lambda device=None: current[-1]
    torch.cuda.Stream = _Stream
    torch.cuda.stream = stream
    torch.cuda.device = lambda device: contextlib.nullcontext()
    return current


def _runtime(fakes, work: Path) -> dict:
    import torch
    from uavrt.runtime.trt_backend import TrtBackend

    current = _fake_torch_cuda()
    be = TrtBackend(work / "engines", device="cpu")
    runner = be.load("raft")
    x1, x2 = torch.randn(2, 3, 128, 136), torch.randn(2, 3, 128, 136)
    out = {}
    calls = []
    for label, s in (("default_stream", None), ("side_stream", _Stream(handle=0x5500))):
        _Stream.events.clear()
        if s is not None:
            current.append(s)
        caller = torch.cuda.current_stream()
        res = runner(image1=x1, image2=x2)
        ctx = runner.context._state
        out[label] = {"caller": caller.cuda_stream, "handle": ctx["handles"][-1], "events": list(_Stream.events),
                      "flow_up_err": float((res["flow_up"] - (x1 - x2)[:, :2]).abs().max()),
                      "shapes": {k: list(v.shape) for k, v in res.items()},
                      "addresses_are_outputs": ctx["addresses"]["flow_up"] == res["flow_up"].data_ptr()}
        if s is not None:
            current.pop()
    unet = be.load("unet")  # fp16 I/O and int64 inputs; shares the activation buffer with raft
    g = torch.Generator().manual_seed(0)
    feed = dict(sample=torch.randn(2, 4, 3, 40, 48, generator=g), timestep=torch.tensor(958),
                low_res=torch.randn(2, 3, 3, 40, 48, generator=g),
                encoder_hidden_states=torch.randn(2, 7, 32, generator=g), class_labels=torch.tensor([120, 20]))
    y = unet(**feed)["noise_pred"]
    uctx = unet.context._state
    out["unet"] = {"dtype": str(y.dtype), "err": float((y - feed["sample"].half().float()).abs().max()),
                   "input_dtypes": {k: str(unet.dtypes[k]) for k in unet.input_names},
                   "shared_memory": uctx["device_memory"] == runner.context._state["device_memory"],
                   "contexts": len(be.memory.contexts)}
    calls = sorted({c[0] for c in fakes.calls if c[0].startswith(("ICudaEngine", "IExecutionContext", "Runtime"))})
    return {"runs": out, "calls": calls, "strategy": runner.context._state["strategy"],
            "device_memory": list(runner.context._state["device_memory"] or ())}


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], sys.argv[3:] or ["main"])
