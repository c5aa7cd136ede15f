// Helpers shared by the binding files: argument conversion at the Python boundary. Each binding is a
// thin adapter: convert the arrays, call the shape-level resolver (resolve/resolve.h), allocate the
// outputs, release the GIL and call the table.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "fastnn.h"
#include "resolve/resolve.h"

namespace fastnn {
namespace py = pybind11;
using farray = py::array_t<float, py::array::forcecast>;  // float32, strides kept when already float32

inline Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }
inline std::string shape_str(const py::array& a) { return shape_str(shape_of(a)); }

// Any array-like -> float32 array (a copy only when the dtype differs or byte strides are not a
// multiple of 4). Strides are kept: kernels taking element strides read views without copying.
farray as_f32(const py::handle& h, const char* name);
// The same, C-contiguous (for kernels that need dense input).
farray as_f32_contig(const py::handle& h, const char* name);
// Element stride of axis `ax` of a float32 array.
inline int64_t estride(const farray& a, int ax) { return a.strides(ax) / int64_t(sizeof(float)); }
// Checks that `out` is a writable C-contiguous float32 array of exactly `shape`, or allocates one.
farray out_or_new(const py::object& out, const std::vector<int64_t>& shape, const char* name);
// Refuses an `out` whose byte range overlaps that of input `in` of the same call: the kernels read
// inputs while writing the output, so shared memory silently gives wrong results. (Interleaved views
// that share no element are refused too: comparing the two ranges costs a few instructions.) With `exact_ok` the out may be the
// input itself (same data, shape and strides): elementwise kernels read each element before writing
// it. A partial overlap is refused either way. An empty input or output cannot overlap.
void check_out_disjoint(const farray& out, const py::array& in, const std::string& op, const char* in_name,
                        bool exact_ok = false);

// Each group binds its ops into a backend submodule (m is _C.ref, _C.avx512, ...).
void bind_gemm(py::module_& m, const KernelTable* t);
void bind_conv(py::module_& m, const KernelTable* t);
void bind_unary(py::module_& m, const KernelTable* t);
void bind_softmax(py::module_& m, const KernelTable* t);
void bind_loss(py::module_& m, const KernelTable* t);
void bind_dropout(py::module_& m, const KernelTable* t);
void bind_optim(py::module_& m, const KernelTable* t);
void bind_resample(py::module_& m, const KernelTable* t);

// _C.unary_ops: ((name, saves_output, alpha default or None, doc), ...) in UnaryOp order.
py::tuple unary_op_table();
}  // namespace fastnn
