#!/usr/bin/env bash
# One run on a GPU machine does everything issue #17 needs a GPU for (device time is short):
#   1. builds fastnn with FASTNN_CUDA=ON into build-gpu (all modules, for this machine's Python),
#   2. runs the CUDA tests (tests/test_cuda*.py, tests/test_devices.py) against the CPU tables,
#   3. runs the GPU benchmark (python -m fastnn.bench gpu),
# and writes report.md, pytest.log, bench.log and bench.json to $OUT (default ./gpu_report).
# Usage: tools/gpu_check.sh [--quick]     (--quick: smaller benchmark cases)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_report}
mkdir -p "$OUT"
QUICK=${1:-}
PY=${PYTHON:-python3}
BUILD=${BUILD_DIR:-build-gpu}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
report() { echo "$*" | tee -a "$OUT/report.md"; }
: >"$OUT/report.md"
report "# fastnn GPU check ($(date -u +%FT%TZ))"
report '```'
(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "no nvidia-smi") | tee -a "$OUT/report.md"
echo "nvcc: $(nvcc --version 2>/dev/null | tail -1)" | tee -a "$OUT/report.md"
report '```'

t0=$(date +%s)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTNN_CUDA=ON \
    -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v $PY)" >"$OUT/build.log" 2>&1
fi
if cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" >>"$OUT/build.log" 2>&1; then
  cp -f "$BUILD"/_C*.so "$BUILD"/_pipeline*.so "$BUILD"/_cuda*.so fastnn/
  report "build: ok in $(( $(date +%s) - t0 )) s"
else
  report "build: FAILED (tail of build.log below)"; tail -30 "$OUT/build.log" | tee -a "$OUT/report.md"; exit 1
fi
$PY -c "import fastnn, json; print(json.dumps(fastnn.build_info())); from fastnn import _cuda; print('cublas:', _cuda.cublas_path(), 'gemm backend:', _cuda.gemm_backend())" 2>&1 | tee -a "$OUT/report.md"

t0=$(date +%s)
$PY -m pytest -q -rs tests/test_cuda_import.py tests/test_cuda_kernels.py tests/test_devices.py 2>&1 | tee "$OUT/pytest.log" | tail -40
report "tests ($(( $(date +%s) - t0 )) s): $(tail -1 "$OUT/pytest.log")"
grep -E "^(FAILED|ERROR)" "$OUT/pytest.log" | head -40 | tee -a "$OUT/report.md"

t0=$(date +%s)
$PY -m fastnn.bench gpu $QUICK --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
report "bench ($(( $(date +%s) - t0 )) s):"
report '```'
cat "$OUT/bench.log" >>"$OUT/report.md"
report '```'
