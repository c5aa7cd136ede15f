// Placeholder GEMM (simple loops) until the BLIS-style driver lands.
#include "cpu/gemm/gemm.h"

namespace fastnn {
namespace CPU_CAPABILITY {
void gemm(const GemmParams& p) {
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.N; ++j) {
      float acc = 0.f;
      for (int64_t k = 0; k < p.K; ++k) acc += p.A[i * p.rsa + k * p.csa] * p.B[k * p.rsb + j * p.csb];
      float* c = &p.C[i * p.ldc + j];
      float v = p.alpha * acc + (p.beta == 0.f ? 0.f : p.beta * *c);
      if (p.bias) v += p.bias[j];
      if (p.act == kActRelu) v = v > 0.f ? v : 0.f;
      *c = v;
    }
}

void fill_gemm(GemmOps& t) { t.gemm = gemm; }
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
