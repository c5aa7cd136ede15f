"""The C++ op tables as Python sees them: _C.unary_ops (the X-macro list of csrc/ops/unary_ops.h) names
every activation each backend binds, row for row with the test table op_table; saves_output says what
backward really needs. The per-op numeric checks are in test_activation.py."""
import numpy as np
import pytest

from fastnn import _C, backend
from op_table import BY_NAME, UNARY, sample

BACKENDS = [("ref", _C.ref)] + sorted(backend.tables().items())
OPS = {name: (saves, alpha) for name, saves, alpha, _ in _C.unary_ops}


def test_unary_ops_format():
    assert isinstance(_C.unary_ops, tuple) and len(_C.unary_ops) == len(OPS)
    for entry in _C.unary_ops:
        name, saves, alpha, doc = entry
        assert isinstance(entry, tuple) and isinstance(name, str) and isinstance(saves, bool)
        assert alpha is None or isinstance(alpha, float)
        assert isinstance(doc, str) and doc


def test_test_table_has_a_row_per_kernel():
    """A kernel added to the X-macro list without a row in op_table (or a row left behind) fails here."""
    assert [r.name for r in UNARY] == [e[0] for e in _C.unary_ops]


@pytest.mark.parametrize("op", list(OPS))
def test_saves_and_alpha_match_the_test_table(op):
    saves, alpha = OPS[op]
    row = BY_NAME[op]
    assert saves == row.saves
    assert alpha == (None if row.alpha is None else pytest.approx(row.alpha))


@pytest.mark.parametrize("name,mod", BACKENDS)
def test_every_backend_binds_every_op(name, mod):
    for op in OPS:
        assert callable(getattr(mod, op + "_forward")) and callable(getattr(mod, op + "_backward")), (name, op)


@pytest.mark.parametrize("op", sorted(OPS))
def test_saves_output_matches_backward(op):
    """backward(1, saved) with saved = y or x as the table says equals the finite-difference slope of
    the forward (away from kinks; the ops that save y would give a different slope from x)."""
    saves, alpha = OPS[op]
    x = sample(BY_NAME[op], 200, 3)
    kw = {} if alpha is None else {"alpha": alpha}
    fwd = getattr(_C.ref, op + "_forward")
    h = np.float32(1e-2)
    slope = (fwd(x + h, **kw).astype(np.float64) - fwd(x - h, **kw)) / (2 * np.float64(h))
    saved = fwd(x, **kw) if saves else x
    for name, mod in BACKENDS:
        dx = getattr(mod, op + "_backward")(np.ones_like(x), saved, **kw)
        np.testing.assert_allclose(dx, slope, rtol=2e-3, atol=2e-3, err_msg=f"{name} {op}")


CONV_CASES = [  # (x shape, kernel shape, geometry): pointwise, few taps, Winograd, im2col with gaps, dilated
    ((2, 5, 5, 8), (1, 1, 8, 16), {}),
    ((2, 6, 6, 2), (3, 3, 2, 16), {"padding": "same"}),
    ((1, 8, 8, 8), (3, 3, 8, 16), {"padding": "same"}),
    ((2, 7, 7, 5), (2, 2, 5, 3), {"strides": 3}),
    ((1, 9, 9, 4), (3, 3, 4, 5), {"dilation_rate": 2, "padding": "same"}),
]


@pytest.mark.parametrize("xs,ks,geo", CONV_CASES)
def test_conv2d_backward_writes_its_gradients(xs, ks, geo):
    """Backward kernels overwrite: the gradients come back right in memory that held NaNs before."""
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ks).astype(np.float32)
    g = rng.standard_normal(_C.ref.conv2d_forward(x, k, **geo).shape).astype(np.float32)
    want = _C.ref.conv2d_backward(g, x, k, **geo)
    for name, mod in BACKENDS:
        for _ in range(3):
            junk = [np.full(a.shape, np.nan, np.float32) for a in want]  # freed: the next arrays may reuse it
            del junk
            for got, ref in zip(mod.conv2d_backward(g, x, k, **geo), want):
                np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4, err_msg=name)
