// Binding of dropout -> EltOps::dropout.
#include <string>

#include "bind/common.h"

namespace fastnn {
void bind_dropout(py::module_& m, const KernelTable* t) {
  const EltOps* e = &t->elt;
  m.def(
      "dropout",
      [e](const py::object& x_in, double rate, uint64_t seed, uint64_t offset, const py::object& out) {
        check_dropout_rate(rate);
        farray x = as_f32_contig(x_in, "dropout: x");
        farray y = out_or_new(out, shape_of(x), "dropout");
        check_out_disjoint(y, x, "dropout", "x", true);
        {
          py::gil_scoped_release nogil;
          e->dropout(y.mutable_data(), x.data(), x.size(), rate, seed, offset);
        }
        return y;
      },
      py::arg("x"), py::arg("rate"), py::arg("seed"), py::arg("offset") = 0, py::kw_only(), py::arg("out") = py::none(),
      "Inverted dropout: x / (1 - rate) where kept, 0 where dropped; the mask is a pure function of "
      "(seed, offset, element index). The gradient is the same call on dy.");
}
}  // namespace fastnn
