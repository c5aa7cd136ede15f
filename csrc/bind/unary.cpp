// Bindings of the pointwise activations: <act>_forward / <act>_backward -> EltOps::unary_forward /
// unary_backward for every op of ops/unary_ops.h, and the table itself as _C.unary_ops.
// Inputs are converted to float32 C-contiguous arrays; every result can be written into `out=`.
#include <string>

#include "bind/common.h"

namespace fastnn {
void bind_unary(py::module_& m, const KernelTable* t) {
  const EltOps* e = &t->elt;
  for (int op = 0; op < kUnaryCount; ++op) {
    const UnaryInfo& u = kUnaryOps[op];
    const std::string fwd = std::string(u.name) + "_forward", bwd = std::string(u.name) + "_backward";
    const float alpha = float(u.alpha.value_or(0.0));  // ops without alpha keep the keyword and ignore it
    m.def(
        fwd.c_str(),
        [e, op, fwd](const py::object& x_in, float alpha, const py::object& out) {
          farray x = as_f32_contig(x_in, (fwd + ": x").c_str());
          farray y = out_or_new(out, shape_of(x), fwd.c_str());
          check_out_disjoint(y, x, fwd, "x", true);
          {
            py::gil_scoped_release nogil;
            e->unary_forward(op, y.mutable_data(), x.data(), x.size(), alpha);
          }
          return y;
        },
        py::arg("x"), py::kw_only(), py::arg("alpha") = alpha, py::arg("out") = py::none(),
        (std::string(u.name) + "(x) elementwise as float32: " + u.doc).c_str());
    m.def(
        bwd.c_str(),
        [e, op, bwd](const py::object& dy_in, const py::object& s_in, float alpha, const py::object& out) {
          farray dy = as_f32_contig(dy_in, (bwd + ": dy").c_str());
          farray s = as_f32_contig(s_in, (bwd + ": saved").c_str());
          check_same_shape(shape_of(dy), shape_of(s), bwd + ": dy and the saved array");
          farray dx = out_or_new(out, shape_of(dy), bwd.c_str());
          check_out_disjoint(dx, dy, bwd, "dy", true);
          check_out_disjoint(dx, s, bwd, "saved", true);
          {
            py::gil_scoped_release nogil;
            e->unary_backward(op, dx.mutable_data(), dy.data(), s.data(), dy.size(), alpha);
          }
          return dx;
        },
        py::arg("dy"), py::arg("saved"), py::kw_only(), py::arg("alpha") = alpha, py::arg("out") = py::none(),
        (std::string("Gradient of ") + u.name + ": saved is the forward " + (u.saves_output ? "output y." : "input x."))
            .c_str());
  }
}

py::tuple unary_op_table() {
  py::list ops;
  for (const UnaryInfo& u : kUnaryOps)
    ops.append(py::make_tuple(u.name, u.saves_output, u.alpha ? py::object(py::float_(*u.alpha)) : py::none(), u.doc));
  return py::tuple(ops);
}
}  // namespace fastnn
