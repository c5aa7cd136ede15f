#!/usr/bin/env bash
# Developer build without pip: configure + build into ./build and copy the extension next to the
# Python sources, so `PYTHONPATH=. python ...` (or pytest from the repo root) uses it. Each git
# worktree builds independently. CI and users use `pip install .` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python3)" >/dev/null
fi
cmake --build "$BUILD" -j "${JOBS:-2}"
cp -f "$BUILD"/_C*.so "$BUILD"/_pipeline*.so fastnn/
