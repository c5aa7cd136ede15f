#!/usr/bin/env bash
# CI's sanitizer stage: build the extension with AddressSanitizer + UndefinedBehaviorSanitizer and run the kernel
# and op tests against it. The tests iterate over every CPU table the machine has (fastnn.backend.tables()), so one
# run covers every ISA; any report aborts the process and fails the stage.
#   tools/sanitize.sh [pytest args...]      (default: the kernel and op tiers)
# NOTE (measured pitfalls): the ASan runtime must be preloaded together with libstdc++ (else the first C++ exception
# aborts inside ASan); pytest needs -s or UBSan's reports are swallowed; leak checking is off (the interpreter's
# own allocations are not leaks); FASTNN_SANITIZE puts -O1 after the common -O3.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUILD=${BUILD_DIR:-build-sanitize}
"$PY" -m pip install -q pybind11 cython cmake ninja
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  "$PY" -m cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFASTNN_SANITIZE=address,undefined \
    -DCMAKE_MAKE_PROGRAM="$("$PY" -c 'import ninja, os; print(os.path.join(ninja.BIN_DIR, "ninja"))')" \
    -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
fi
"$PY" -m cmake --build "$BUILD" -j "${JOBS:-2}"
# a private copy of the package with the sanitized modules, first on sys.path
SITE="$BUILD/site"
rm -rf "$SITE" && mkdir -p "$SITE" && cp -r fastnn "$SITE/" && rm -f "$SITE"/fastnn/*.so
cp "$BUILD"/_C*.so "$BUILD"/_pipeline*.so "$SITE/fastnn/"
TESTS=("$@")
if [ ${#TESTS[@]} -eq 0 ]; then
  TESTS=(tests/test_gemm.py tests/test_conv2d.py tests/test_pool2d.py tests/test_activation.py tests/test_loss.py
         tests/test_dropout.py tests/test_optimizer_kernels.py tests/test_optimizers_tail.py tests/test_cpp_tables.py
         tests/test_autograd_ops.py tests/test_tensor.py tests/test_hostile_inputs.py tests/test_properties.py
         tests/test_recurrent_kernels.py tests/test_embedding.py tests/test_conv1d.py tests/test_batchnorm.py
         tests/test_vision_layers.py tests/test_augmentation.py tests/test_threads_neighbours.py)
fi
GCC=${CC:-gcc}
export LD_PRELOAD="$($GCC -print-file-name=libasan.so) $($GCC -print-file-name=libstdc++.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_odr_violation=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# NOTE: run from inside the private copy: `python -m` puts the working directory first on sys.path, and from the
# checkout's root that would import the checkout's own fastnn/ instead of the sanitized one (checked below)
ROOT=$(pwd)
PY_ABS=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
cd "$SITE"
PYTHONPATH="$SITE" "$PY_ABS" -c "import fastnn, sys; f = fastnn._C.__file__; print('sanitized module:', f); sys.exit(not f.startswith('$(pwd)'))"
PYTHONPATH="$SITE" "$PY_ABS" -m pytest -q -s -p no:cacheprovider --rootdir "$ROOT" "${TESTS[@]/#/$ROOT/}"
