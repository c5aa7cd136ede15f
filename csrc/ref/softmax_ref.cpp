// Reference softmax / log_softmax (any axis, as (outer, K, inner)) and fused softmax cross-entropy,
// accumulated in double.
#include <cmath>
#include <cstdint>

#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
void softmax_forward(float* y, const float* x, int64_t outer, int64_t K, int64_t inner, int log) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* xs = x + o * K * inner + i;
      float* ys = y + o * K * inner + i;
      double m = xs[0], s = 0;
      for (int64_t k = 1; k < K; ++k) m = std::max<double>(m, xs[k * inner]);
      for (int64_t k = 0; k < K; ++k) s += std::exp(xs[k * inner] - m);
      for (int64_t k = 0; k < K; ++k)
        ys[k * inner] = float(log ? (xs[k * inner] - m) - std::log(s) : std::exp(xs[k * inner] - m) / s);
    }
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t outer, int64_t K, int64_t inner,
                      int log) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t off = o * K * inner + i;
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += log ? dy[off + k * inner] : double(dy[off + k * inner]) * y[off + k * inner];
      for (int64_t k = 0; k < K; ++k) {
        const double g = dy[off + k * inner], yk = y[off + k * inner];
        dx[off + k * inner] = float(log ? g - std::exp(yk) * s : yk * (g - s));
      }
    }
}

// Target weight of class k in row b (one-hot for integer labels).
double t_of(const int32_t* labels, const float* target, int64_t b, int64_t k, int64_t K) {
  return labels ? (labels[b] == k ? 1.0 : 0.0) : target[b * K + k];
}

void softmax_xent_forward(float* loss, float* lse, const float* x, const int32_t* labels, const float* target,
                          int64_t B, int64_t K) {
  for (int64_t b = 0; b < B; ++b) {
    const float* xb = x + b * K;
    double m = xb[0], s = 0, l = 0;
    for (int64_t k = 1; k < K; ++k) m = std::max<double>(m, xb[k]);
    for (int64_t k = 0; k < K; ++k) s += std::exp(xb[k] - m);
    const double lse_b = m + std::log(s);
    for (int64_t k = 0; k < K; ++k) l += t_of(labels, target, b, k, K) * (lse_b - xb[k]);
    lse[b] = float(lse_b);
    loss[b] = float(l);
  }
}

void softmax_xent_backward(float* dx, const float* dloss, const float* x, const float* lse, const int32_t* labels,
                           const float* target, int64_t B, int64_t K) {
  for (int64_t b = 0; b < B; ++b) {
    double st = 0;
    for (int64_t k = 0; k < K; ++k) st += t_of(labels, target, b, k, K);
    for (int64_t k = 0; k < K; ++k)
      dx[b * K + k] = float(dloss[b] * (std::exp(double(x[b * K + k]) - lse[b]) * st - t_of(labels, target, b, k, K)));
  }
}
}  // namespace

void fill_softmax(EltOps& t) {
  t.softmax_forward = softmax_forward;
  t.softmax_backward = softmax_backward;
  t.softmax_xent_forward = softmax_xent_forward;
  t.softmax_xent_backward = softmax_xent_backward;
}
}  // namespace ref
}  // namespace fastnn
