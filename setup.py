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
                  "uavrt.export": ["*.json"],
                  "uavrt.serve": ["static/*.html"]},
    # torch: install the build for your machine first (CPU: pip install torch==2.13.0); a bare
    # requirement would pull a multi-GB CUDA build.
    install_requires=["torch>=2.4", "numpy>=1.24", "safetensors>=0.4", "av>=14", "transformers>=4.40", "tqdm"],
    extras_require={
        "onnx": ["onnx>=1.17", "onnxscript>=0.2", "onnxruntime>=1.20", "polygraphy>=0.50.3", "onnx-graphsurgeon>=0.5"],
        # same module as onnxruntime: install one or the other; 1.27 is the first whose TensorRT
        # provider runs TensorRT 11
        "onnx-gpu": ["onnx>=1.17", "onnxscript>=0.2", "onnxruntime-gpu>=1.27", "polygraphy>=0.50.3",
                     "onnx-graphsurgeon>=0.5"],
        "kernels": ["cuda-bindings>=13,<14", "nvidia-cuda-nvrtc>=13,<14", "nvidia-cuda-runtime>=13,<14",
                    "cuda-pathfinder>=1.2.3"],  # find_nvidia_header_directory("cudart") is public from 1.2.3
        # Polygraphy 0.49.x reads layer.precision_is_set, which TensorRT 11 removed: every build fails
        "trt": ["tensorrt>=11", "polygraphy>=0.50.3"],
        # ray alone (no [default]: no dashboard server); add torch==2.13.0 to the pip command so
        # pip keeps your torch build
        "ray": ["ray>=2.40,<3", "psutil"],
        "bench": ["psutil", "matplotlib", "opencv-python-headless>=4.8"],
        # uavrt serve: the job server
        "serve": ["fastapi>=0.110", "uvicorn>=0.29", "python-multipart>=0.0.18", "prometheus_client>=0.20"],
        # config.pbtxt checks against Triton's ModelConfig protobuf (pins protobuf < 7)
        "triton": ["tritonclient[grpc]>=2.40"],
        "test": ["pytest>=8", "psutil", "matplotlib", "httpx>=0.27", "fastapi>=0.110", "uvicorn>=0.29",
                 "python-multipart>=0.0.18", "prometheus_client>=0.20", "tritonclient[grpc]>=2.40"],
    },
    entry_points={"console_scripts": ["uavrt=uavrt.commands:main"]},
)
