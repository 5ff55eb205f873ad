"""The CPU code paths every stage computes with, fixed before torch, numpy or OpenCV load.

torch, oneDNN, MKL, numpy's OpenBLAS and OpenCV each pick their kernels by the processor they find (AVX2,
AVX-512, ...) and split reductions by their thread count; the kernels round differently, so the same inputs gave
other weights, other PSNRs and other hashes in ``dvc.lock`` on another machine, or with another core count. Every
stage process therefore sets these variables itself, overriding the caller's, before any of those libraries loads
(``sam4ir.stages`` imports this module first): on any x86-64 processor with AVX2, the same inputs give the same
bytes. The values are constants of the code, so they are part of every stage's code fingerprint
(``sam4ir.stages.code``), which also records them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The AVX2 level of each library, and one thread per task process (the stages run tasks side by side instead).
PINS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",          # torch's own vectorised kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",           # oneDNN (torch's CPU convolutions)
    "DNNL_MAX_CPU_ISA": "AVX2",             # the same, under oneDNN's older name
    "MKL_CBWR": "AVX2",                     # MKL's conditional numerical reproducibility (torch's BLAS)
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",         # numpy's OpenBLAS kernels (Haswell = AVX2 + FMA)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's dispatched AVX-512 loops
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",   # what torch.use_deterministic_algorithms needs of cuBLAS (train.deterministic)
}
# OpenCV's dispatched AVX-512 kernels; set only where the processor has them (OpenCV warns about each name otherwise)
OPENCV_AVX512 = ("OPENCV_CPU_DISABLE", "AVX512-SKX,AVX512-KNL,AVX512-KNM,AVX512-CNL,AVX512-CLX,AVX512-ICL")


def has_avx512(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this processor has AVX-512 (read from ``/proc/cpuinfo``: no library need load to ask)."""
    try:
        return " avx512f" in cpuinfo.read_text()
    except OSError:
        return False


def cpu_pins() -> dict[str, str]:
    """The variables :func:`pin_cpu` sets on this machine: none off x86-64 (the pins name x86 code paths)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    return {**PINS, **dict([OPENCV_AVX512] if has_avx512() else [])}


def pin_cpu() -> dict[str, str]:
    """Set :func:`cpu_pins` in this process's environment (inherited by the task processes it starts); effective
    for the libraries not loaded yet, so a stage calls it before importing torch, numpy or OpenCV."""
    pins = cpu_pins()
    os.environ.update(pins)
    return pins
