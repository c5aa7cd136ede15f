// Bindings of softmax_* and log_softmax_* -> EltOps::softmax_forward / softmax_backward (log = 0 / 1).
// Inputs are converted to float32 C-contiguous arrays; every result can be written into `out=`.
#include <string>

#include "bind/common.h"

namespace fastnn {
void bind_softmax(py::module_& m, const KernelTable* t) {
  const EltOps* e = &t->elt;
  for (int log = 0; log < 2; ++log) {
    const std::string base = log ? "log_softmax" : "softmax";
    const std::string fwd = base + "_forward", bwd = base + "_backward";
    m.def(
        fwd.c_str(),
        [e, log, fwd](const py::object& x_in, int axis, const py::object& out) {
          farray x = as_f32_contig(x_in, (fwd + ": x").c_str());
          const AxisSplit sp = resolve_softmax_axis(shape_of(x), axis, fwd);
          farray y = out_or_new(out, shape_of(x), fwd.c_str());
          check_out_disjoint(y, x, fwd, "x", true);
          {
            py::gil_scoped_release nogil;
            if (x.size() > 0) e->softmax_forward(y.mutable_data(), x.data(), sp.outer, sp.K, sp.inner, log);
          }
          return y;
        },
        py::arg("x"), py::arg("axis") = -1, py::kw_only(), py::arg("out") = py::none(),
        (base + " of x along axis (max-subtracted) as float32.").c_str());
    m.def(
        bwd.c_str(),
        [e, log, bwd](const py::object& dy_in, const py::object& y_in, int axis, const py::object& out) {
          farray dy = as_f32_contig(dy_in, (bwd + ": dy").c_str());
          farray y = as_f32_contig(y_in, (bwd + ": y").c_str());
          check_same_shape(shape_of(dy), shape_of(y), bwd + ": dy and y");
          const AxisSplit sp = resolve_softmax_axis(shape_of(y), axis, bwd);
          farray dx = out_or_new(out, shape_of(y), bwd.c_str());
          check_out_disjoint(dx, dy, bwd, "dy");
          check_out_disjoint(dx, y, bwd, "y");
          {
            py::gil_scoped_release nogil;
            if (y.size() > 0) e->softmax_backward(dx.mutable_data(), dy.data(), y.data(), sp.outer, sp.K, sp.inner, log);
          }
          return dx;
        },
        py::arg("dy"), py::arg("y"), py::arg("axis") = -1, py::kw_only(), py::arg("out") = py::none(),
        (std::string("Gradient of ") + base + " from its output y.").c_str());
  }
}
}  // namespace fastnn
