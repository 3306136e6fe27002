"""NVRTC compiles the CUDA source to CUBINs for the target GPUs (no GPU needed)."""

import struct

import pytest

from uavrt.errors import BackendUnavailable, ConfigError

EM_CUDA = 190  # ELF e_machine of NVIDIA CUDA binaries


@pytest.fixture(scope="module")
def nvrtc():
    from uavrt.kernels import nvrtc
    try:
        nvrtc.nvrtc_version()
        nvrtc._cuda_include_dir()
    except BackendUnavailable as e:
        pytest.skip(f"NVRTC or the CUDA headers are not available here: {e}")
    return nvrtc


@pytest.fixture(scope="module")
def compiled(nvrtc, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("UAVRT_CACHE_DIR", str(tmp_path_factory.mktemp("nvrtc-cache")))
    from uavrt import kernels
    try:
        yield kernels.compile_kernels(["sm_80", "sm_90"])
    finally:
        mp.undo()


def test_cubins_for_ampere_and_hopper(compiled, nvrtc):
    assert [r["arch"] for r in compiled] == ["sm_80", "sm_90"]
    for r in compiled:
        cubin = r["cubin"]
        assert cubin[:4] == b"\x7fELF", f"{r['arch']}: not an ELF CUBIN (PTX?)"
        assert struct.unpack_from("<H", cubin, 18)[0] == EM_CUDA
        for name in ("uav_propagate_step_f32", "uav_propagate_step_f16", "uav_fb_check_f32"):
            assert name.encode() in cubin  # extern "C" kernels, found by cuModuleGetFunction
        assert r["seconds"] > 0 and r["nvrtc"] == nvrtc.nvrtc_version()
    assert compiled[0]["cubin"] != compiled[1]["cubin"]


def test_cubins_are_cached(compiled, nvrtc, monkeypatch):
    from pathlib import Path
    for r in compiled:
        path = Path(r["path"])
        assert path.read_bytes() == r["cubin"]
        monkeypatch.setenv("UAVRT_CACHE_DIR", str(path.parent.parent))
        monkeypatch.setattr(nvrtc, "compile_cubin_uncached", lambda arch: pytest.fail("recompiled a cached CUBIN"))
        assert nvrtc.cubin_for(r["arch"]) == r["cubin"]


@pytest.mark.parametrize("spelling", ["sm_90", "90", "9.0", (9, 0)])
def test_arch_spellings(nvrtc, spelling):
    assert nvrtc.normalize_arch(spelling) == "sm_90"


@pytest.mark.parametrize("bad", ["sm_1", "compute_90", "hopper"])
def test_bad_arch(nvrtc, bad):
    with pytest.raises(ConfigError) as e:
        nvrtc.normalize_arch(bad)
    assert "sm_90" in str(e.value)  # the message lists what is allowed
