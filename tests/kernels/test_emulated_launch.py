"""gpu.py's launch path (cuda-bindings calls, argument packing, grid, stream and context handling)
run against the emulated CUDA driver (uavrt.kernels.emulator), which runs the real NVRTC CUBIN's
kernels as host code for every thread of the launched grid. Tolerance: bitwise against the host
build (both run propagate.h's float32 operations compiled by g++ with the same flags)."""

import threading

import pytest
import torch

from uavrt.kernels import abi, api, gpu, host

VARIANTS = [("nearest", "fuse"), ("bilinear", "fuse"), ("nearest", "copy"), ("bilinear", "copy")]
DTYPES = [torch.float32, torch.float16]


def _inputs(flow_pair, B=2, C=3, T=5, H=23, W=37, seed=21):
    """Odd sizes: B*H*W = 1702 threads, 7 blocks of 256, the last one partial."""
    fw, bw = flow_pair(B, T - 1, H, W, seed=seed)
    x = torch.randn(B, C, T, H, W, generator=torch.Generator().manual_seed(seed)) * 2
    return x, fw, bw


def _opts(interpolation, mode):
    return dict(interpolation=interpolation, mode=mode, fuse_scale=0.5, alpha1=0.001, alpha2=0.05)


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
@pytest.mark.parametrize("interpolation,mode", VARIANTS)
def test_emulated_launch_equals_host_build(emu, flow_pair, dtype, interpolation, mode):
    x, fw, bw = _inputs(flow_pair)
    x = x.to(dtype)
    want = api.propagate_with(host, x, fw, bw, **_opts(interpolation, mode))
    got = api.propagate_with(gpu, emu.to_device(x), emu.to_device(fw), emu.to_device(bw), **_opts(interpolation, mode))
    assert got.dtype == dtype
    assert torch.equal(got, want), f"{(got != want).sum().item()} elements differ from the host build"
    B, _, T, H, W = x.shape
    suffix = {torch.float32: "f32", torch.float16: "f16"}[dtype]
    assert [launch.name for launch in emu.launches] == [f"uav_propagate_step_{suffix}"] * (2 * (T - 1))
    for launch in emu.launches:  # one thread per (batch item, pixel), rounded up to whole blocks
        assert launch.block == (gpu.BLOCK, 1, 1) and launch.grid == (-(-B * H * W // gpu.BLOCK), 1, 1)
        assert launch.stream == 0 and launch.context == emu.driver.primary[0]
    assert emu.driver.retained[0] == 2  # torch's init and gpu.py's, once per device for all launches


def test_resized_flows(emu, flow_pair):
    x, _, _ = _inputs(flow_pair, T=4)
    fw, bw = flow_pair(2, 3, 50, 80, seed=5, scale=8.0)  # flows at another resolution: resized first
    want = api.propagate_with(host, x, fw, bw, **_opts("bilinear", "fuse"))
    got = api.propagate_with(gpu, *(emu.to_device(t) for t in (x, fw, bw)), **_opts("bilinear", "fuse"))
    assert torch.equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
def test_warp_and_check_equal_host_build(emu, flow_pair, dtype):
    x, fw, bw = _inputs(flow_pair)
    x0, f0, b0 = x[:, :, 0].to(dtype).contiguous(), fw[:, :, 0].contiguous(), bw[:, :, 0].contiguous()
    xd, fd, bd = (emu.to_device(t) for t in (x0, f0, b0))
    for nearest in (True, False):  # outputs are fresh NaN-poisoned allocations: a missed pixel shows
        assert torch.equal(gpu.flow_warp(xd, fd, nearest), host.flow_warp(x0, f0, nearest))
    assert torch.equal(gpu.fb_check(fd, bd, 0.001, 0.05), host.fb_check(f0, b0, 0.001, 0.05))
    assert {launch.name for launch in emu.launches} == {
        f"uav_flow_warp_{'f32' if dtype == torch.float32 else 'f16'}", "uav_fb_check_f32"}


def test_fresh_device_allocations_are_poisoned(emu):
    """What makes a pixel the grid misses visible: empty device memory is NaN, not zeros."""
    assert torch.empty(3, 5).isnan().all() and torch.empty_like(torch.ones(7, dtype=torch.float16)).isnan().all()


def test_host_memory_is_an_illegal_address(nvrtc_ok, flow_pair):
    from uavrt.kernels.emulator import emulated_cuda
    x, fw, bw = _inputs(flow_pair)  # made outside the emulator: host memory
    with emulated_cuda() as emu:
        with pytest.raises(RuntimeError, match="CUDA_ERROR_ILLEGAL_ADDRESS"):
            gpu.step(emu.to_device(x), 1, 0, fw, bw, 0, nearest=True, copy=False, fuse_w=0.5, fuse_c=0.5,
                     alpha1=0.001, alpha2=0.05)
        assert "argument 3" in emu.driver.faults[-1]  # the flow: the first pointer not on the device
        assert emu.launches == []


def test_runs_on_torchs_current_stream(emu, flow_pair):
    x, fw, bw = (emu.to_device(t) for t in _inputs(flow_pair, T=3))
    with emu.stream() as side:
        api.propagate_with(gpu, x, fw, bw, **_opts("nearest", "fuse"))
    api.propagate_with(gpu, x, fw, bw, **_opts("nearest", "fuse"))
    assert [launch.stream for launch in emu.launches] == [side] * 4 + [0] * 4


def test_thread_without_a_current_context_pushes_and_pops(emu, flow_pair):
    """torch's thread has the primary context current; another thread gets it pushed for the
    launch and popped after (the driver's context stack is per thread)."""
    x, fw, bw = (emu.to_device(t) for t in _inputs(flow_pair, T=3))
    want = api.propagate_with(gpu, x, fw, bw, **_opts("bilinear", "fuse"))  # main thread (after torch init)
    seen = {}

    def work():
        seen["before"] = emu.driver.current_context()
        with emu.allocations():
            seen["out"] = api.propagate_with(gpu, x, fw, bw, **_opts("bilinear", "fuse"))
        seen["after"] = emu.driver.current_context()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen["before"] == 0 and seen["after"] == 0
    assert torch.equal(seen["out"], want)
    assert {launch.context for launch in emu.launches} == {emu.driver.primary[0]}
    assert emu.driver.current_context() == emu.driver.primary[0]


def test_argument_table_matches_the_kernels(emu):
    """abi.py's ctypes table == the C++ parameter types of propagate.cu == the CUBIN's layout."""
    from uavrt.kernels import nvrtc
    from uavrt.kernels.emulator import read_cubin
    codes = {abi.P: "P", abi.I: "I", abi.L: "L", abi.F: "F"}
    arch, cubin_kernels = read_cubin(nvrtc.cubin_for("sm_90"))
    assert arch == (9, 0)
    lib = emu.driver._lib
    assert set(lib.kernels) == set(abi.KERNEL_NAMES) == set(cubin_kernels)
    for name, types in abi.SIGNATURES.items():
        cpp_codes, cpp_sizes = lib.signature(name)
        assert "".join(codes[t] for t in types) == cpp_codes, name
        assert tuple(ctypes_size(t) for t in types) == cpp_sizes == tuple(s for _, s in cubin_kernels[name].params)


def ctypes_size(t):
    import ctypes
    return ctypes.sizeof(t)


def test_the_driver_is_strict(emu):
    with pytest.raises(AttributeError, match="cuMemAlloc"):
        emu.driver.cuMemAlloc(16)
    drv = emu.driver
    if not drv._probe_real:
        pytest.skip("a real CUDA driver is installed here: the real binding is not called to vet arguments")
    emu.init()
    with pytest.raises(TypeError):  # the real binding refuses str names; bytes are required
        drv.cuModuleGetFunction(drv.CUmodule(1), "uav_fb_check_f32")
    with pytest.raises(TypeError):  # extra=None is refused by cuda-bindings 13 (gpu.py passes 0)
        drv.cuLaunchKernel(drv.CUfunction(1), 1, 1, 1, 1, 1, 1, 0, drv.CUstream(0), 1, None)


def test_cubin_for_another_architecture_is_refused(nvrtc_ok):
    from uavrt.kernels import nvrtc
    from uavrt.kernels.emulator import emulated_cuda
    cubin = nvrtc.cubin_for("sm_90")
    with emulated_cuda(capability=(8, 0)) as emu:
        emu.init()
        status, module = emu.driver.cuModuleLoadData(cubin)
        assert status == emu.driver.CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU and module is None


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_threads_do_not_depend_on_each_other(emu, flow_pair, interpolation):
    """The same launches with every block and thread run in reverse order give the same bits: no
    thread reads what another writes (out aliases cur, but each thread reads only its own pixel
    of cur). Shown to detect a dependency: a step warping a frame onto itself (prev = cur)."""
    x, fw, bw = (emu.to_device(t) for t in _inputs(flow_pair))
    forward = api.propagate_with(gpu, x, fw, bw, **_opts(interpolation, "fuse"))
    emu.driver.reverse_order = True
    assert torch.equal(api.propagate_with(gpu, x, fw, bw, **_opts(interpolation, "fuse")), forward)

    def self_warp(reverse):
        emu.driver.reverse_order = reverse
        y = x.clone()
        gpu.step(y, 1, 1, fw, bw, 0, nearest=interpolation == "nearest", copy=True, fuse_w=0.5, fuse_c=0.5,
                 alpha1=0.001, alpha2=0.05)
        return y
    assert not torch.equal(self_warp(False), self_warp(True))


def test_out_of_bounds_access_is_an_illegal_address(emu, flow_pair):
    """Every load and store is checked against the tensors the launch was given: a check flow with
    one frame where the layout (from y) expects T-1 makes batch item 1 read past its end."""
    x, fw, bw = (emu.to_device(t) for t in _inputs(flow_pair))
    short = bw[:, :, :1].contiguous()  # [B, 2, 1, H, W]: its pointer is valid, batch item 1 is not there
    with pytest.raises(RuntimeError, match="CUDA_ERROR_ILLEGAL_ADDRESS"):
        gpu.step(x.clone(), 1, 0, fw, short, 0, nearest=True, copy=False, fuse_w=0.5, fuse_c=0.5, alpha1=0.001,
                 alpha2=0.05)
    assert "loads/stores outside the allocations" in emu.driver.faults[-1]
    gpu.step(x.clone(), 1, 0, fw, bw, 0, nearest=True, copy=False, fuse_w=0.5, fuse_c=0.5, alpha1=0.001,
             alpha2=0.05)  # the same launch with the right tensor is fine
    assert len(emu.launches) == 1
