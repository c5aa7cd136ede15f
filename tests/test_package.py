"""Package basics: build_info, thread control, ISA dispatch and its environment override."""
import os
import subprocess
import sys

import pytest

import fastnn
from fastnn import _C, backend


def test_version_and_build_info():
    assert fastnn.__version__.count(".") == 2
    info = fastnn.build_info()
    assert info["simd"] in ("avx512", "avx2", "generic")
    assert info["cuda"] in (True, False)
    assert "GNU" in info["compiler"] or "Clang" in info["compiler"]
    assert info["cpu_capability"] in info["supported_isas"]


def test_supported_isas_are_bound():
    assert "default" in _C.supported_isas
    for name, mod in backend.tables().items():
        assert mod.name == name
        assert hasattr(mod, "gemm")
    assert _C.ref.name == "ref"


def test_set_get_num_threads():
    old = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
        fastnn.set_num_threads(2)
        assert fastnn.get_num_threads() == 2
        with pytest.raises(ValueError, match="n must be >= 1"):
            fastnn.set_num_threads(0)
        with pytest.raises(TypeError):
            fastnn.set_num_threads(1.5)
    finally:
        fastnn.set_num_threads(old)


def _run(code, **env):
    # NOTE: cwd outside the checkout: `python -c` puts cwd on sys.path, and the source tree's fastnn/
    # (without the compiled module, in CI) would shadow the installed package.
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(os.path.dirname(fastnn.__file__)))


def test_omp_num_threads_is_honoured():
    r = _run("import fastnn; print(fastnn.get_num_threads())", OMP_NUM_THREADS="1")
    assert r.stdout.strip() == "1"


@pytest.mark.parametrize("isa", ["default", "avx2"])
def test_capability_override(isa):
    if isa not in _C.supported_isas:
        pytest.skip(f"this CPU cannot run {isa}")
    r = _run("import fastnn; print(fastnn.build_info()['cpu_capability'])", FASTNN_CPU_CAPABILITY=isa)
    assert r.stdout.strip() == isa


def test_unknown_capability_warns():
    r = _run("import fastnn; print(fastnn.build_info()['cpu_capability'])", FASTNN_CPU_CAPABILITY="sse9")
    assert r.stdout.strip() == _C.best_isa
    assert "not one of" in r.stderr
