// Binding of the GEMM op: gemm(a, b, c=None, *, trans_a, trans_b, alpha, beta, bias, activation, out).
#include "bind/common.h"

namespace fastnn {
void bind_gemm(py::module_& m, const KernelTable* t) {
  m.def(
      "gemm",
      [t](const py::object& a_in, const py::object& b_in, const py::object& c_in, bool trans_a, bool trans_b,
          float alpha, float beta, const py::object& bias_in, const std::string& activation, const py::object& out) {
        farray a = as_f32(a_in, "gemm: a"), b = as_f32(b_in, "gemm: b");
        FASTNN_CHECK(a.ndim() == 2 && b.ndim() == 2,
                     "gemm: a and b must be 2-D, got a " + shape_str(a) + " and b " + shape_str(b));
        const int64_t M = a.shape(trans_a ? 1 : 0), K = a.shape(trans_a ? 0 : 1);
        const int64_t Kb = b.shape(trans_b ? 1 : 0), N = b.shape(trans_b ? 0 : 1);
        FASTNN_CHECK(K == Kb, "gemm: inner dimensions differ: op(a) is (" + std::to_string(M) + ", " +
                                  std::to_string(K) + ") from a " + shape_str(a) + ", op(b) is (" +
                                  std::to_string(Kb) + ", " + std::to_string(N) + ") from b " + shape_str(b));
        FASTNN_CHECK(activation == "none" || activation == "relu",
                     "gemm: activation must be 'none' or 'relu', got '" + activation + "'");
        farray c = out_or_new(out, {M, N}, "gemm");
        if (beta != 0.0f) {
          FASTNN_CHECK(!c_in.is_none(), "gemm: beta is non-zero but c was not given");
          farray cc = as_f32(c_in, "gemm: c");
          FASTNN_CHECK(cc.ndim() == 2 && cc.shape(0) == M && cc.shape(1) == N,
                       "gemm: c has shape " + shape_str(cc) + ", expected (" + std::to_string(M) + ", " +
                           std::to_string(N) + ")");
          if (!cc.is(c)) c[py::make_tuple(py::ellipsis())] = cc;  // c itself stays untouched
        }
        farray bias;  // NOTE: a default farray is an empty array, not null: test bias_in instead
        if (!bias_in.is_none()) {
          bias = as_f32_contig(bias_in, "gemm: bias");
          FASTNN_CHECK(bias.ndim() == 1 && bias.shape(0) == N,
                       "gemm: bias has shape " + shape_str(bias) + ", expected (" + std::to_string(N) + ",)");
        }
        GemmParams p{};
        p.M = M; p.N = N; p.K = K; p.alpha = alpha; p.beta = beta;
        p.A = a.data(); p.rsa = estride(a, trans_a ? 1 : 0); p.csa = estride(a, trans_a ? 0 : 1);
        p.B = b.data(); p.rsb = estride(b, trans_b ? 1 : 0); p.csb = estride(b, trans_b ? 0 : 1);
        p.C = c.mutable_data(); p.ldc = N;
        p.bias = bias_in.is_none() ? nullptr : bias.data();
        p.act = activation == "relu" ? kActRelu : kActNone;
        {
          py::gil_scoped_release nogil;
          if (M > 0 && N > 0) t->gemm.gemm(p);
        }
        return c;
      },
      py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("trans_a") = false,
      py::arg("trans_b") = false, py::arg("alpha") = 1.0f, py::arg("beta") = 0.0f, py::arg("bias") = py::none(),
      py::arg("activation") = "none", py::arg("out") = py::none(),
      "alpha*op(a)@op(b) + beta*c (+bias per column, then activation) as float32 (M, N).");
}
}  // namespace fastnn
