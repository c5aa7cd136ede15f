// Naive reference GEMM: the test oracle. Obviously correct, never optimised: one double accumulator
// per output element, K in order.
#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
void gemm(const GemmParams& p) {
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < p.K; ++k)
        acc += double(p.A[i * p.rsa + k * p.csa]) * double(p.B[k * p.rsb + j * p.csb]);
      float* c = &p.C[i * p.ldc + j];
      double v = double(p.alpha) * acc + (p.beta == 0.0f ? 0.0 : double(p.beta) * double(*c));
      if (p.bias) v += double(p.bias[j]);
      if (p.act == kActRelu && !(v > 0.0)) v = (v != v) ? v : 0.0;  // relu keeps NaN as NaN
      *c = float(v);
    }
}
}  // namespace

void fill_gemm(GemmOps& t) { t.gemm = gemm; }
}  // namespace ref
}  // namespace fastnn
