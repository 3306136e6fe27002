"""Stub TensorRT 11 shared libraries: the 9 C entry points the real Python bindings link against.

The bindings (`tensorrt_bindings/tensorrt.so`) need libnvinfer.so.11, libnvonnxparser.so.11 and
libnvinfer_plugin.so.11 to load; module init calls none of their functions, so exporting the
symbols is enough to import the real module and read its API on a CPU machine. Every factory
returns NULL (a real Builder/Runtime cannot be made from them) and the libraries deliberately
do NOT export getInferLibVersion, which is how `uavrt info` tells them from a real TensorRT.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCES = {
    "libnvinfer.so.11": """
void *createInferBuilder_INTERNAL(void *logger, int version) { return 0; }
void *createInferRuntime_INTERNAL(void *logger, int version) { return 0; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version) { return 0; }
void *getPluginRegistry(void) { return 0; }
void *getBuilderPluginRegistry(int capability) { return 0; }
""",
    "libnvonnxparser.so.11": """
void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) { return 0; }
void *createNvOnnxParserRefitter_INTERNAL(void *refitter, void *logger, int version) { return 0; }
int getNvOnnxParserVersion(void) { return 110400; }
""",
    "libnvinfer_plugin.so.11": """
int initLibNvInferPlugins(void *logger, const char *ns) { return 1; }
""",
}


def compiler():
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def build_stubs(out_dir) -> Path:
    """Compile the three stub libraries into out_dir with the system C compiler."""
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler (cc/gcc/clang) on PATH")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, code in SOURCES.items():
        src = out / (name.split(".so")[0] + ".c")
        src.write_text(code)
        subprocess.run([cc, "-shared", "-fPIC", "-o", str(out / name), f"-Wl,-soname,{name}", str(src)],
                       check=True, capture_output=True, timeout=60)
    return out
