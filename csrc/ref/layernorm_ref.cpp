// Naive reference layer normalization over the last axis of (N, C) (the test oracle): each row's mean and
// biased variance, in double.
#include <cmath>

#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
void layernorm_forward(float* y, float* mean, float* inv, const float* x, const float* gamma, const float* beta,
                       int64_t N, int64_t C, float epsilon) {
  for (int64_t n = 0; n < N; ++n) {
    const float* a = x + n * C;
    double s = 0.0, q = 0.0;
    for (int64_t c = 0; c < C; ++c) s += a[c];
    const double m = s / double(C);
    for (int64_t c = 0; c < C; ++c) q += (a[c] - m) * (a[c] - m);
    mean[n] = float(m);
    inv[n] = float(1.0 / std::sqrt(q / double(C) + double(epsilon)));
    for (int64_t c = 0; c < C; ++c)
      y[n * C + c] = float((a[c] - double(mean[n])) * inv[n] * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0));
  }
}

void layernorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* gamma,
                        const float* mean, const float* inv, int64_t N, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    double sg = 0.0, sgx = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      sg += dy[n * C + c];
      sgx += dy[n * C + c] * ((x[n * C + c] - double(mean[n])) * inv[n]);
    }
    if (dgamma) dgamma[c] = float(sgx);
    if (dbeta) dbeta[c] = float(sg);
  }
  for (int64_t n = 0; dx && n < N; ++n) {
    double sg = 0.0, sgx = 0.0;  // over the row: g = dy * gamma
    for (int64_t c = 0; c < C; ++c) {
      const double g = dy[n * C + c] * (gamma ? gamma[c] : 1.0);
      sg += g;
      sgx += g * ((x[n * C + c] - double(mean[n])) * inv[n]);
    }
    for (int64_t c = 0; c < C; ++c) {
      const double g = dy[n * C + c] * (gamma ? gamma[c] : 1.0), xhat = (x[n * C + c] - double(mean[n])) * inv[n];
      dx[n * C + c] = float(inv[n] * (g - sg / double(C) - xhat * sgx / double(C)));
    }
  }
}
}  // namespace

void fill_layernorm(VisionOps& t) {
  t.layernorm_forward = layernorm_forward;
  t.layernorm_backward = layernorm_backward;
}
}  // namespace ref
}  // namespace fastnn
