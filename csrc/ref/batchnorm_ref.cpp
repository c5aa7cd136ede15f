// Naive reference batch normalization over the last axis of (N, C) (the test oracle), Keras semantics:
// biased batch variance, moving = moving * momentum + batch * (1 - momentum).
#include <cmath>

#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
float activate(float v, int act) {
  if (act == kBnRelu) return v > 0.0f ? v : 0.0f;
  if (act == kBnRelu6) return v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
  return v;
}

void batchnorm_forward(float* y, float* mean, float* inv, float* moving_mean, float* moving_var, const float* x,
                       const float* gamma, const float* beta, const BatchNormParams& p) {
  for (int64_t c = 0; c < p.C; ++c) {
    double m, v;
    if (p.training) {
      double s = 0.0, q = 0.0;
      for (int64_t n = 0; n < p.N; ++n) s += x[n * p.C + c];
      m = s / double(p.N);
      for (int64_t n = 0; n < p.N; ++n) q += (x[n * p.C + c] - m) * (x[n * p.C + c] - m);
      v = q / double(p.N);
      if (moving_mean) moving_mean[c] = float(moving_mean[c] * double(p.momentum) + m * (1.0 - double(p.momentum)));
      if (moving_var) moving_var[c] = float(moving_var[c] * double(p.momentum) + v * (1.0 - double(p.momentum)));
    } else {
      m = moving_mean[c];
      v = moving_var[c];
    }
    mean[c] = float(m);
    inv[c] = float(1.0 / std::sqrt(v + double(p.epsilon)));
    const double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
    for (int64_t n = 0; n < p.N; ++n)
      y[n * p.C + c] = activate(float((x[n * p.C + c] - double(mean[c])) * inv[c] * g + bt), p.act);
  }
}

void batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* y,
                        const float* gamma, const float* beta, const float* mean, const float* inv,
                        const BatchNormParams& p) {
  for (int64_t c = 0; c < p.C; ++c) {
    const double gm = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
    const auto grad = [&](int64_t n) {  // dy through the activation's derivative at y (recomputed when null)
      const int64_t i = n * p.C + c;
      const float v = y ? y[i] : activate(float((x[i] - double(mean[c])) * inv[c] * gm + bt), p.act);
      if (p.act == kBnRelu) return v > 0.0f ? double(dy[i]) : 0.0;
      if (p.act == kBnRelu6) return (v > 0.0f && v < 6.0f) ? double(dy[i]) : 0.0;
      return double(dy[i]);
    };
    double sg = 0.0, sgx = 0.0;  // sum g, sum g * xhat
    for (int64_t n = 0; n < p.N; ++n) {
      const double xhat = (x[n * p.C + c] - double(mean[c])) * inv[c];
      sg += grad(n);
      sgx += grad(n) * xhat;
    }
    if (dgamma) dgamma[c] = float(sgx);
    if (dbeta) dbeta[c] = float(sg);
    if (!dx) continue;
    const double gi = (gamma ? gamma[c] : 1.0) * inv[c], N = double(p.N);
    for (int64_t n = 0; n < p.N; ++n) {
      const double xhat = (x[n * p.C + c] - double(mean[c])) * inv[c];
      dx[n * p.C + c] = float(p.training ? gi * (grad(n) - sg / N - xhat * sgx / N) : gi * grad(n));
    }
  }
}
}  // namespace

void fill_batchnorm(VisionOps& t) {
  t.batchnorm_forward = batchnorm_forward;
  t.batchnorm_backward = batchnorm_backward;
}
}  // namespace ref
}  // namespace fastnn
