#!/usr/bin/env bash
# The one GPU check, from any folder: benchmarks/gpu_check.sh --out DIR [--tiny] (see benchmarks/gpu_check.py).
# PYTHON picks the interpreter (default: python on PATH, e.g. the project's activated venv).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
