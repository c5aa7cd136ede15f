// Binding of the GEMM op: gemm(a, b, c=None, *, trans_a, trans_b, alpha, beta, bias, activation, out).
#include "bind/common.h"

namespace fastnn {
void bind_gemm(py::module_& m, const KernelTable* t) {
  m.def(
      "gemm",
      [t](const py::object& a_in, const py::object& b_in, const py::object& c_in, bool trans_a, bool trans_b,
          float alpha, float beta, const py::object& bias_in, const std::string& activation, const py::object& out) {
        farray a = as_f32(a_in, "gemm: a"), b = as_f32(b_in, "gemm: b");
        const GemmDims d = resolve_gemm(shape_of(a), shape_of(b), trans_a, trans_b, activation);
        farray c = out_or_new(out, {d.M, d.N}, "gemm");
        if (beta != 0.0f) {
          check_gemm_beta(beta, !c_in.is_none());
          farray cc = as_f32(c_in, "gemm: c");
          check_gemm_c(shape_of(cc), d);
          if (!cc.is(c)) c[py::make_tuple(py::ellipsis())] = cc;  // c itself stays untouched
        }
        farray bias;  // NOTE: a default farray is an empty array, not null: test bias_in instead
        if (!bias_in.is_none()) {
          bias = as_f32_contig(bias_in, "gemm: bias");
          check_gemm_bias(shape_of(bias), d);
          check_out_disjoint(c, bias, "gemm", "bias");
        }
        // c may be out itself or overlap it: it is copied into out above and never read again
        check_out_disjoint(c, a, "gemm", "a");
        check_out_disjoint(c, b, "gemm", "b");
        GemmParams p{};
        p.M = d.M; p.N = d.N; p.K = d.K; p.alpha = alpha; p.beta = beta;
        p.A = a.data(); p.rsa = estride(a, trans_a ? 1 : 0); p.csa = estride(a, trans_a ? 0 : 1);
        p.B = b.data(); p.rsb = estride(b, trans_b ? 1 : 0); p.csb = estride(b, trans_b ? 0 : 1);
        p.C = c.mutable_data(); p.ldc = d.N;
        p.bias = bias_in.is_none() ? nullptr : bias.data();
        p.act = activation == "relu" ? kActRelu : kActNone;
        {
          py::gil_scoped_release nogil;
          if (d.M > 0 && d.N > 0) t->gemm.gemm(p);
        }
        return c;
      },
      py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("trans_a") = false,
      py::arg("trans_b") = false, py::arg("alpha") = 1.0f, py::arg("beta") = 0.0f, py::arg("bias") = py::none(),
      py::arg("activation") = "none", py::arg("out") = py::none(),
      "alpha*op(a)@op(b) + beta*c (+bias per column, then activation) as float32 (M, N).");
}
}  // namespace fastnn
