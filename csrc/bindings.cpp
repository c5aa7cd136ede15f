// PYBIND11_MODULE(_C): package-level functions, then one submodule per backend with identical op
// names (_C.ref, _C.default, _C.avx2, _C.avx512 where the CPU runs it), and _C.cpu = the active one.
#include <omp.h>

#include "bind/common.h"

#ifndef FASTNN_VERSION_INFO
#define FASTNN_VERSION_INFO "dev"
#endif

namespace fastnn {
namespace {
void bind_table(py::module_& m, const KernelTable* t) {
  m.attr("name") = t->name;
  bind_gemm(m, t);
  bind_conv(m, t);
  bind_unary(m, t);
  bind_softmax(m, t);
  bind_loss(m, t);
  bind_dropout(m, t);
  bind_optim(m, t);
}
}  // namespace
}  // namespace fastnn

PYBIND11_MODULE(_C, m) {
  using namespace fastnn;
  m.doc() = "fastnn C++ kernels";
  py::module_ ref = m.def_submodule("ref", "naive reference kernels (test oracle)");
  bind_table(ref, ref_table());
  py::list isas;
  for (const char* isa : {"default", "avx2", "avx512"}) {
    if (!isa_supported(isa)) continue;
    isas.append(isa);
    py::module_ sub = m.def_submodule(isa, "kernels compiled for this ISA");
    bind_table(sub, isa_table(isa));
  }
  m.attr("supported_isas") = isas;
  m.attr("unary_ops") = unary_op_table();
  m.attr("best_isa") = best_isa();
  m.attr("active_isa") = active_isa();
  m.attr("cpu") = m.attr(active_isa());
  m.def("set_num_threads", [](int n) {
    FASTNN_CHECK(n >= 1, "set_num_threads: n must be >= 1, got " + std::to_string(n));
    omp_set_num_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", []() { return omp_get_max_threads(); });
  m.attr("compiler") = FASTNN_COMPILER;
  m.attr("openmp") = FASTNN_OPENMP;
}
