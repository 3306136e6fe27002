"""An emulated CUDA driver on the CPU, to run gpu.py's launch path in CI (a test device).

`emulated_cuda()` swaps in, for the duration of a `with` block:
- `cuda.bindings.driver`: an object offering exactly the driver functions gpu.py calls
  (anything else raises AttributeError) with the real cuda-bindings 13 signatures (checked
  against the installed module when the emulator starts) and its return tuples. Where no driver
  is installed, every call is first handed to the real binding, whose argument conversion then
  refuses what the real one refuses before it reaches the missing library; handles are the real
  cuda-bindings types.
- the four `torch.cuda` functions gpu.py calls (`init`, `get_device_capability`,
  `current_device`, `current_stream`), answering for one device of the given capability.
- "device memory": the storages of tensors made inside the block (a TorchDispatchMode records
  every op's outputs and fills `empty*` allocations with 0xFF bytes, NaN for floats, so a pixel
  a launch misses is seen). A kernel pointer outside it fails the launch (ILLEGAL_ADDRESS).

The module is the real NVRTC CUBIN (gpu.py compiles it as on a GPU): cuModuleLoadData checks
its ELF header and architecture and reads each kernel's parameter layout from its .nv.info
section; cuModuleGetFunction checks that layout against the C++ signature of the same kernel in
the emulator's host build of propagate.cu (propagate_emu.cpp); cuLaunchKernel copies each
argument's bytes out of kernelParams by that layout, checks the context, the stream, the launch
dimensions and the pointers, then runs the kernel body for every thread of every block
(sequentially: in launch order, or the reverse with `driver.reverse_order`, which shows threads
that depend on each other's writes), checking every load and store against the allocations its
pointer arguments point into (a GPU would fault: ILLEGAL_ADDRESS), and records the launch in
`Emulator.launches`.

It proves argument packing, order and types, grid/block coverage, dtype dispatch, in-bounds
memory accesses, the context and stream handling, and that results do not depend on thread
order, for the shapes tested; it cannot show
data races under real concurrency, the memory model, timing or GPU codegen.
"""

from __future__ import annotations

import contextlib
import ctypes
import inspect
import itertools
import struct
import threading
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..errors import BackendUnavailable
from . import host

EMU_SOURCES = ("propagate.h", "propagate.cu", "propagate_emu.cpp")
# what gpu.py may use from cuda.bindings.driver besides the functions below
_DRIVER_TYPES = ("CUresult", "CUcontext", "CUdevice", "CUmodule", "CUfunction", "CUstream")
EM_CUDA = 190
_KPARAM_INFO, _EIFMT_SVAL = 0x17, 0x04
MAX_THREADS_PER_BLOCK, MAX_BLOCK = 1024, (1024, 1024, 64)
MAX_GRID = (2 ** 31 - 1, 65535, 65535)
_CODES = {"P": "Q", "I": "i", "L": "q", "F": "f"}  # C++ type code -> struct format


# --- the CUBIN ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CubinKernel:
    name: str
    params: tuple  # ((offset, size) per parameter, in order)


def read_cubin(image: bytes) -> tuple[tuple[int, int], dict[str, CubinKernel]]:
    """(sm major, minor) and the kernels with their parameter layouts of a CUBIN (ELF64)."""
    if image[:4] != b"\x7fELF" or image[4] != 2:
        raise ValueError("not an ELF64 image (PTX or fatbin?)")
    machine, = struct.unpack_from("<H", image, 18)
    if machine != EM_CUDA:
        raise ValueError(f"ELF machine {machine}, not CUDA ({EM_CUDA})")
    flags, = struct.unpack_from("<I", image, 0x30)
    sm = (flags >> 8) & 0xFF  # ELF ABI v8 CUBINs (CUDA 12+): the SM version in bits 8-15
    shoff, = struct.unpack_from("<Q", image, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", image, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", image, shoff + i * shentsize) for i in range(shnum)]
    names_at = sections[shstrndx][4]

    def name_of(off):
        start = names_at + off
        return image[start:image.index(b"\0", start)].decode()

    kernels = {}
    for sh_name, _, _, _, offset, size, *_ in sections:
        name = name_of(sh_name)
        if not name.startswith(".nv.info."):
            continue
        params, p = [], offset
        while p < offset + size:  # records: u8 format, u8 attribute, u16 value or payload size
            fmt, attr, value = struct.unpack_from("<BBH", image, p)
            p += 4
            if fmt == _EIFMT_SVAL:
                # EIATTR_KPARAM_INFO: u32 index, u16 ordinal, u16 offset, u32 (size in bits 18-31); the
                # layout matches the known signatures of all five kernels (test_argument_table_matches_the_kernels)
                if attr == _KPARAM_INFO:
                    _, ordinal, poff, bits = struct.unpack_from("<IHHI", image, p)
                    params.append((ordinal, poff, (bits >> 18) & 0x3FFF))
                p += value
        kernel = name[len(".nv.info."):]
        kernels[kernel] = CubinKernel(kernel, tuple((o, s) for _, o, s in sorted(params)))
    return (sm // 10, sm % 10), kernels


# --- the host build of propagate.cu -------------------------------------------------------------

class _EmuLibrary:
    def __init__(self):
        lib = ctypes.CDLL(str(host.build_library("propagate_emu.cpp", EMU_SOURCES).path))
        lib.uav_emu_kernels.restype = ctypes.c_char_p
        lib.uav_emu_signature.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        lib.uav_emu_launch.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
                                       ctypes.c_void_p, ctypes.c_int]
        lib.uav_emu_set_ranges.argtypes = [ctypes.POINTER(ctypes.c_ulonglong), ctypes.c_int]
        lib.uav_emu_faults.argtypes = [ctypes.POINTER(ctypes.c_ulonglong)]
        lib.uav_emu_faults.restype = ctypes.c_longlong
        self.lib = lib
        self.kernels = tuple(lib.uav_emu_kernels().decode().split())

    def signature(self, name: str) -> tuple[str, tuple[int, ...]]:
        """Type codes ('P', 'I', 'L', 'F') and sizes of kernel `name`'s C++ parameters."""
        codes, sizes = ctypes.create_string_buffer(64), (ctypes.c_int * 64)()
        n = self.lib.uav_emu_signature(name.encode(), codes, sizes)
        if n < 0:
            raise KeyError(name)
        return codes.raw[:n].decode(), tuple(sizes[:n])

    def launch(self, name: str, grid, block, params, reverse: bool, ranges) -> tuple[int, int]:
        """Run the kernel, letting it touch only `ranges` ([(start, end)]); (refused accesses, first address)."""
        flat = [a for r in ranges for a in r]
        if self.lib.uav_emu_set_ranges((ctypes.c_ulonglong * max(len(flat), 1))(*flat), len(ranges)) != 0:
            raise ValueError(f"too many allocations for one launch: {len(ranges)}")
        if self.lib.uav_emu_launch(name.encode(), (ctypes.c_uint * 3)(*grid), (ctypes.c_uint * 3)(*block),
                                   ctypes.addressof(params), int(reverse)) != 0:
            raise KeyError(name)
        first = ctypes.c_ulonglong()
        return self.lib.uav_emu_faults(ctypes.byref(first)), first.value


# --- device memory ------------------------------------------------------------------------------

class DeviceMemory:
    """Storages that count as device memory (kept alive: the emulated device never frees)."""

    def __init__(self):
        self._storages = {}  # data_ptr -> UntypedStorage

    def add(self, t: torch.Tensor, poison: bool = False) -> None:
        s = t.untyped_storage()
        if s.nbytes() == 0 or s.device.type != "cpu":
            return
        self._storages[s.data_ptr()] = s
        if poison:
            ctypes.memset(s.data_ptr(), 0xFF, s.nbytes())

    def find(self, ptr: int):
        """(start, end) of the allocation holding address ptr, or None."""
        for start, s in self._storages.items():
            if start <= ptr < start + s.nbytes():
                return start, start + s.nbytes()
        return None


_EMPTY_OPS = {torch.ops.aten.empty.memory_format, torch.ops.aten.empty_like.default,
              torch.ops.aten.empty_strided.default, torch.ops.aten.new_empty.default}


class _Allocations(TorchDispatchMode):
    """Every tensor an op makes inside the emulator is device memory; fresh `empty` ones are poisoned."""

    def __init__(self, memory: DeviceMemory):
        super().__init__()
        self.memory = memory

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # a view (or in-place result) of an input is as much device memory as that input was
        inputs = {_storage_ptr(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and _storage_ptr(t) not in inputs:
                self.memory.add(t, poison=func in _EMPTY_OPS)
        return out


def _storage_ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


# --- the driver ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Launch:
    name: str
    grid: tuple
    block: tuple
    shared: int
    stream: int
    context: int
    args: tuple  # decoded argument values


@dataclass
class _Module:
    context: int
    kernels: dict


class EmulatedDriver:
    """Stands in for `cuda.bindings.driver`: the functions gpu.py calls, nothing else."""

    FUNCTIONS = ("cuGetErrorName", "cuInit", "cuDeviceGet", "cuDevicePrimaryCtxRetain", "cuCtxGetCurrent",
                 "cuCtxPushCurrent", "cuCtxPopCurrent", "cuModuleLoadData", "cuModuleGetFunction", "cuLaunchKernel")

    def __init__(self, real, lib: _EmuLibrary, memory: DeviceMemory, capability: tuple[int, int]):
        self._real, self._lib, self._memory, self.capability = real, lib, memory, capability
        for name in _DRIVER_TYPES:
            setattr(self, name, getattr(real, name))
        for name in self.FUNCTIONS:  # the contract: same parameter names, in the same order
            want = list(inspect.signature(getattr(real, name)).parameters)
            have = list(inspect.signature(getattr(self, name)).parameters)
            if want != have:
                raise BackendUnavailable(f"cuda-bindings' {name}{tuple(want)} differs from the emulated "
                                         f"{name}{tuple(have)}: update uavrt/kernels/emulator.py")
        self._probe_real = _no_driver(real)
        self.initialized = False
        self._tls = threading.local()
        self.primary = {0: 0x1000}  # device ordinal -> primary context handle (one device)
        self.retained = {0: 0}
        self.streams = {0, 1, 2}  # NULL, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD
        self._handles = itertools.count(0x2000, 0x10)
        self.modules: dict[int, _Module] = {}
        self.functions: dict[int, tuple[int, CubinKernel]] = {}  # handle -> (module, kernel)
        self.launches: list[Launch] = []
        self.faults: list[str] = []  # why a call returned an error (the driver only gives the code)
        self.reverse_order = False  # run threads last-to-first (order dependence between threads shows)

    def __getattr__(self, name):  # only reached for names not set above
        raise AttributeError(f"the emulated CUDA driver has no {name!r}: gpu.py may only use "
                             f"{', '.join(self.FUNCTIONS + _DRIVER_TYPES)} (see uavrt/kernels/emulator.py)")

    # helpers
    def _check_args(self, name, *args):
        """The real binding converts the arguments first; without a driver it then fails to load
        libcuda, which proves the arguments were accepted. Its TypeError/OverflowError propagates."""
        if not self._probe_real:
            inspect.signature(getattr(self._real, name)).bind(*args)
            return
        try:
            getattr(self._real, name)(*args)
        except RuntimeError as e:
            if type(e).__name__ != "DynamicLibNotFoundError":
                raise
        else:
            raise AssertionError(f"the real {name} ran: the emulator must not be used beside a real driver")

    def _fail(self, code: str, why: str, n_values: int = 0):
        self.faults.append(why)
        return (getattr(self.CUresult, code),) + (None,) * n_values

    @property
    def _stack(self) -> list:
        if not hasattr(self._tls, "stack"):
            self._tls.stack = []
        return self._tls.stack

    def current_context(self) -> int:
        return self._stack[-1] if self._stack else 0

    def torch_init(self) -> None:
        """What torch's CUDA runtime does at init: driver initialised, primary context retained and
        current on the initialising thread."""
        self.initialized = True
        self.retained[0] += 1
        if not self._stack:
            self._stack.append(self.primary[0])

    # the driver API (cuda-bindings 13 signatures)
    def cuGetErrorName(self, error):
        self._check_args("cuGetErrorName", error)
        return self.CUresult.CUDA_SUCCESS, self.CUresult(int(error)).name.encode()

    def cuInit(self, Flags):
        self._check_args("cuInit", Flags)
        if Flags != 0:
            return self._fail("CUDA_ERROR_INVALID_VALUE", f"cuInit flags {Flags} (must be 0)")
        self.initialized = True
        return (self.CUresult.CUDA_SUCCESS,)

    def cuDeviceGet(self, ordinal):
        self._check_args("cuDeviceGet", ordinal)
        if not self.initialized:
            return self._fail("CUDA_ERROR_NOT_INITIALIZED", "cuDeviceGet before cuInit", 1)
        if ordinal not in self.primary:
            return self._fail("CUDA_ERROR_INVALID_DEVICE", f"device {ordinal} of {len(self.primary)}", 1)
        return self.CUresult.CUDA_SUCCESS, self.CUdevice(ordinal)

    def cuDevicePrimaryCtxRetain(self, dev):
        self._check_args("cuDevicePrimaryCtxRetain", dev)
        ordinal = int(dev) if dev is not None else 0
        if not self.initialized or ordinal not in self.primary:
            return self._fail("CUDA_ERROR_INVALID_DEVICE", f"primary context of device {ordinal}", 1)
        self.retained[ordinal] += 1
        return self.CUresult.CUDA_SUCCESS, self.CUcontext(self.primary[ordinal])

    def cuCtxGetCurrent(self):
        self._check_args("cuCtxGetCurrent")
        if not self.initialized:
            return self._fail("CUDA_ERROR_NOT_INITIALIZED", "cuCtxGetCurrent before cuInit", 1)
        return self.CUresult.CUDA_SUCCESS, self.CUcontext(self.current_context())

    def cuCtxPushCurrent(self, ctx):
        self._check_args("cuCtxPushCurrent", ctx)
        handle = int(ctx) if ctx is not None else 0
        if handle not in self.primary.values():
            return self._fail("CUDA_ERROR_INVALID_CONTEXT", f"push of unknown context {handle:#x}")
        self._stack.append(handle)
        return (self.CUresult.CUDA_SUCCESS,)

    def cuCtxPopCurrent(self):
        self._check_args("cuCtxPopCurrent")
        if not self._stack:
            return self._fail("CUDA_ERROR_INVALID_CONTEXT", "pop with no current context", 1)
        return self.CUresult.CUDA_SUCCESS, self.CUcontext(self._stack.pop())

    def cuModuleLoadData(self, image):
        self._check_args("cuModuleLoadData", image)
        if not self.current_context():
            return self._fail("CUDA_ERROR_INVALID_CONTEXT", "cuModuleLoadData without a current context", 1)
        try:
            arch, kernels = read_cubin(bytes(image))
        except (ValueError, struct.error, TypeError) as e:
            return self._fail("CUDA_ERROR_INVALID_IMAGE", f"cuModuleLoadData: {e}", 1)
        major, minor = self.capability
        if arch[0] != major or arch[1] > minor:  # a CUBIN runs on its SM version and later minors
            return self._fail("CUDA_ERROR_NO_BINARY_FOR_GPU", f"CUBIN for sm_{arch[0]}{arch[1]} on "
                              f"sm_{major}{minor}", 1)
        handle = next(self._handles)
        self.modules[handle] = _Module(self.current_context(), kernels)
        return self.CUresult.CUDA_SUCCESS, self.CUmodule(handle)

    def cuModuleGetFunction(self, hmod, name):
        self._check_args("cuModuleGetFunction", hmod, name)
        module = self.modules.get(int(hmod) if hmod is not None else 0)
        if module is None:
            return self._fail("CUDA_ERROR_INVALID_HANDLE", f"unknown module {hmod}", 1)
        kernel = module.kernels.get(name.decode())
        if kernel is None:
            return self._fail("CUDA_ERROR_NOT_FOUND", f"no kernel {name!r} in the CUBIN", 1)
        codes, sizes = self._lib.signature(kernel.name)  # KeyError: a kernel the emulator lacks
        if tuple(s for _, s in kernel.params) != sizes:
            raise AssertionError(f"{kernel.name}: CUBIN parameter sizes {[s for _, s in kernel.params]} differ from "
                                 f"the C++ signature {list(sizes)} ({codes}) of propagate.cu's host build")
        handle = next(self._handles)
        self.functions[handle] = (int(hmod), kernel)
        return self.CUresult.CUDA_SUCCESS, self.CUfunction(handle)

    def cuLaunchKernel(self, f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
                       hStream, kernelParams, extra):
        self._check_args("cuLaunchKernel", f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                         sharedMemBytes, hStream, kernelParams, extra)
        fn = self.functions.get(int(f) if f is not None else 0)
        if fn is None:
            return self._fail("CUDA_ERROR_INVALID_HANDLE", f"unknown function {f}")
        module, kernel = fn
        ctx = self.current_context()
        if ctx == 0 or ctx != self.modules[module].context:
            return self._fail("CUDA_ERROR_INVALID_CONTEXT", f"launch of {kernel.name} with context {ctx:#x} current, "
                              f"its module is in {self.modules[module].context:#x}")
        grid, block = (int(gridDimX), int(gridDimY), int(gridDimZ)), (int(blockDimX), int(blockDimY), int(blockDimZ))
        if (min(grid + block) < 1 or any(g > m for g, m in zip(grid, MAX_GRID))
                or any(b > m for b, m in zip(block, MAX_BLOCK)) or block[0] * block[1] * block[2] > MAX_THREADS_PER_BLOCK):
            return self._fail("CUDA_ERROR_INVALID_VALUE", f"launch dimensions grid {grid} block {block}")
        if sharedMemBytes != 0 or not (extra == 0 or extra is None):
            return self._fail("CUDA_ERROR_INVALID_VALUE", "dynamic shared memory or `extra` (the kernels use neither)")
        stream = int(hStream) if hStream is not None else 0
        if stream not in self.streams:
            return self._fail("CUDA_ERROR_INVALID_HANDLE", f"unknown stream {stream:#x}")
        if not isinstance(kernelParams, int) or kernelParams == 0:
            raise NotImplementedError("the emulator takes kernelParams as the address of a void* array "
                                      f"(what gpu.py passes), got {type(kernelParams).__name__}")
        codes, _ = self._lib.signature(kernel.name)
        copies, values, ranges = [], [], []
        for i, ((_, size), code) in enumerate(zip(kernel.params, codes, strict=True)):
            src = ctypes.c_void_p.from_address(kernelParams + 8 * i).value  # params[i]: where argument i is
            raw = ctypes.string_at(src, size)  # the driver copies the bytes at launch, as here
            value, = struct.unpack("<" + _CODES[code], raw)
            if code == "P":
                allocation = self._memory.find(value)
                if allocation is None:
                    return self._fail("CUDA_ERROR_ILLEGAL_ADDRESS", f"{kernel.name} argument {i} = {value:#x} is "
                                      "not device memory (a tensor made inside the emulator)")
                ranges.append(allocation)
            copies.append(ctypes.create_string_buffer(raw, size))
            values.append(value)
        params = (ctypes.c_void_p * len(copies))(*[ctypes.addressof(c) for c in copies])
        refused, first = self._lib.launch(kernel.name, grid, block, params, self.reverse_order, sorted(set(ranges)))
        if refused:
            return self._fail("CUDA_ERROR_ILLEGAL_ADDRESS", f"{kernel.name}: {refused} loads/stores outside the "
                              f"allocations its pointer arguments point into, the first at {first:#x}")
        self.launches.append(Launch(kernel.name, grid, block, int(sharedMemBytes), stream, ctx, tuple(values)))
        return (self.CUresult.CUDA_SUCCESS,)


def _no_driver(real) -> bool:
    """True when libcuda cannot be loaded here (then the real binding can vet arguments safely)."""
    try:
        real.cuDriverGetVersion()
    except RuntimeError as e:
        return type(e).__name__ == "DynamicLibNotFoundError"
    return False


# --- torch.cuda, as gpu.py uses it --------------------------------------------------------------

@dataclass(frozen=True)
class _Stream:
    cuda_stream: int
    device_index: int = 0


@dataclass
class Emulator:
    driver: EmulatedDriver
    memory: DeviceMemory
    _streams: threading.local = field(default_factory=threading.local)

    @property
    def launches(self) -> list[Launch]:
        return self.driver.launches

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A copy of t in emulated device memory (tensors made inside the block already are)."""
        out = t.detach().clone()
        self.memory.add(out)
        return out

    def allocations(self) -> TorchDispatchMode:
        """Enter on another thread to make its tensors device memory too (dispatch modes are per thread)."""
        return _Allocations(self.memory)

    @contextlib.contextmanager
    def stream(self):
        """Make a new stream torch's current one on this thread for the block (like torch.cuda.stream)."""
        handle = next(self.driver._handles)
        self.driver.streams.add(handle)
        old = getattr(self._streams, "current", 0)
        self._streams.current = handle
        try:
            yield handle
        finally:
            self._streams.current = old

    # torch.cuda's functions, same signatures
    def init(self):
        self.driver.torch_init()

    def get_device_capability(self, device=None):
        return self.driver.capability

    def current_device(self):
        return 0

    def current_stream(self, device=None):
        return _Stream(getattr(self._streams, "current", 0))


_TORCH_CUDA = ("init", "get_device_capability", "current_device", "current_stream")


@contextlib.contextmanager
def emulated_cuda(capability: tuple[int, int] = (9, 0)):
    """Run the block with gpu.py launching on the emulated driver; yields the Emulator.

    Raises BackendUnavailable when cuda-bindings or g++ is missing. gpu.py compiles the real
    CUBIN with NVRTC for sm_{capability} (BackendUnavailable without NVRTC).
    """
    try:
        import cuda.bindings
        from cuda.bindings import driver as real
    except ImportError as e:
        raise BackendUnavailable(f"the CUDA emulator needs cuda-bindings for its types and signatures ({e})") from e
    from . import gpu

    memory = DeviceMemory()
    emu = Emulator(EmulatedDriver(real, _EmuLibrary(), memory, capability), memory)
    for name in _TORCH_CUDA:  # same signatures as torch's, or the stand-ins are out of date
        if list(inspect.signature(getattr(torch.cuda, name)).parameters) != \
                list(inspect.signature(getattr(emu, name)).parameters):
            raise BackendUnavailable(f"torch.cuda.{name} changed its signature: update uavrt/kernels/emulator.py")
    saved = [(cuda.bindings, "driver", real), *[(torch.cuda, n, getattr(torch.cuda, n)) for n in _TORCH_CUDA]]
    with contextlib.suppress(ImportError):  # its module init imports the driver's helpers: the real ones
        import cuda.bindings.nvrtc  # noqa: F401
    gpu._kernels.cache_clear()  # modules loaded on another driver must not be reused
    try:
        cuda.bindings.driver = emu.driver  # what `from cuda.bindings import driver` returns
        for name in _TORCH_CUDA:
            setattr(torch.cuda, name, getattr(emu, name))
        with emu.allocations():
            yield emu
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
        gpu._kernels.cache_clear()
