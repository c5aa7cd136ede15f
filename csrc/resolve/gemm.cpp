#include "resolve/resolve.h"

namespace fastnn {
GemmDims resolve_gemm(const Shape& a, const Shape& b, bool trans_a, bool trans_b, const std::string& activation) {
  FASTNN_CHECK(a.size() == 2 && b.size() == 2,
               "gemm: a and b must be 2-D, got a " + shape_str(a) + " and b " + shape_str(b));
  const int64_t M = a[trans_a ? 1 : 0], K = a[trans_a ? 0 : 1];
  const int64_t Kb = b[trans_b ? 1 : 0], N = b[trans_b ? 0 : 1];
  FASTNN_CHECK(K == Kb, "gemm: inner dimensions differ: op(a) is (" + std::to_string(M) + ", " + std::to_string(K) +
                            ") from a " + shape_str(a) + ", op(b) is (" + std::to_string(Kb) + ", " +
                            std::to_string(N) + ") from b " + shape_str(b));
  FASTNN_CHECK(activation == "none" || activation == "relu",
               "gemm: activation must be 'none' or 'relu', got '" + activation + "'");
  return {M, N, K};
}

void check_gemm_beta(float beta, bool has_c) {
  FASTNN_CHECK(beta == 0.0f || has_c, "gemm: beta is non-zero but c was not given");
}

void check_gemm_c(const Shape& c, const GemmDims& d) {
  FASTNN_CHECK(c.size() == 2 && c[0] == d.M && c[1] == d.N, "gemm: c has shape " + shape_str(c) + ", expected (" +
                                                                 std::to_string(d.M) + ", " + std::to_string(d.N) + ")");
}

void check_gemm_bias(const Shape& bias, const GemmDims& d) {
  FASTNN_CHECK(bias.size() == 1 && bias[0] == d.N,
               "gemm: bias has shape " + shape_str(bias) + ", expected (" + std::to_string(d.N) + ",)");
}
}  // namespace fastnn
