from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path("uavrt/__init__.py").read_text(), version)

setup(
    name="uavrt",
    version=version["__version__"],
    description="Production inference runtime for Upscale-A-Video (diffusion video super-resolution)",
    long_description=Path("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["uavrt", "uavrt.*"]),
    package_data={"uavrt.models": ["configs/*.json", "demo_trained/*.json", "demo_trained/*/*"], "uavrt.kernels": ["*.h", "*.cu", "*.cpp"],
                  "uavrt.export": ["*.json"]},
    # torch: install the build for your machine first (CPU: pip install torch==2.13.0); a bare
    # requirement would pull a multi-GB CUDA build.
    install_requires=["torch>=2.4", "numpy>=1.24", "safetensors>=0.4", "av>=14", "transformers>=4.40", "tqdm"],
    extras_require={
        "onnx": ["onnx>=1.17", "onnxscript>=0.2", "onnxruntime>=1.20", "polygraphy>=0.49", "onnx-graphsurgeon>=0.5"],
        # same module as onnxruntime: install one or the other
        "onnx-gpu": ["onnx>=1.17", "onnxscript>=0.2", "onnxruntime-gpu>=1.20", "polygraphy>=0.49", "onnx-graphsurgeon>=0.5"],
        "kernels": ["cuda-bindings>=13,<14", "nvidia-cuda-nvrtc>=13,<14", "nvidia-cuda-runtime>=13,<14",
                    "cuda-pathfinder>=1.2"],
        "trt": ["tensorrt>=11", "polygraphy>=0.49"],
        "bench": ["psutil", "matplotlib", "opencv-python-headless>=4.8"],
        "test": ["pytest>=8", "psutil", "matplotlib"],
    },
    entry_points={"console_scripts": ["uavrt=uavrt.cli:main"]},
)
