// Reference probability-input cross-entropy (Keras's from_logits=False) and pointwise losses.
// The ISA tables reuse these as they are (see eltwise_ref.h): they run on (batch, classes) sized
// data once per step, far from any bandwidth limit.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fastnn.h"
#include "ref/eltwise_ref.h"

namespace fastnn {
namespace ref {
namespace {
// NOTE: Keras clips float32 values against float32 bounds: hi = 1 - eps rounded to float.
struct Clip {
  float lo, hi;
  explicit Clip(float eps) : lo(eps), hi(1.0f - eps) {}
  float operator()(float v) const { return std::min(std::max(v, lo), hi); }
  bool passes(float v) const { return v >= lo && v <= hi; }  // clip's gradient is 1 inside [lo, hi]
};

double t_of(const int32_t* labels, const float* target, int64_t b, int64_t k, int64_t K) {
  return labels ? (labels[b] == k ? 1.0 : 0.0) : target[b * K + k];
}
}  // namespace

// q = p / sum(p) (float, as Keras), c = clip(q), loss_b = -sum_k t_k log c_k.
void prob_xent_forward(float* loss, const float* p, const int32_t* labels, const float* target, int64_t B,
                       int64_t K, float eps) {
  const Clip clip(eps);
  for (int64_t b = 0; b < B; ++b) {
    float s = 0;
    for (int64_t k = 0; k < K; ++k) s += p[b * K + k];
    double l = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double t = t_of(labels, target, b, k, K);
      if (t != 0) l -= t * std::log(double(clip(p[b * K + k] / s)));
    }
    loss[b] = float(l);
  }
}

// With g_k = -t_k / c_k where the clip passes (else 0): dp_i = dloss_b * (g_i - sum_k g_k q_k) / s.
void prob_xent_backward(float* dp, const float* dloss, const float* p, const int32_t* labels, const float* target,
                        int64_t B, int64_t K, float eps) {
  const Clip clip(eps);
  for (int64_t b = 0; b < B; ++b) {
    float s = 0;
    for (int64_t k = 0; k < K; ++k) s += p[b * K + k];
    auto g_of = [&](int64_t k) {
      const float q = p[b * K + k] / s;
      const double t = t_of(labels, target, b, k, K);
      return (t != 0 && clip.passes(q)) ? -t / clip(q) : 0.0;
    };
    double gq = 0;
    for (int64_t k = 0; k < K; ++k) gq += g_of(k) * (p[b * K + k] / s);
    for (int64_t k = 0; k < K; ++k) dp[b * K + k] = float(dloss[b] * (g_of(k) - gq) / s);
  }
}

double point_loss_forward(int kind, const float* p, const float* y, int64_t n, float eps) {
  const Clip clip(eps);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(p[i]) - y[i], c = clip(p[i]), x = p[i];
    switch (kind) {
      case kMse: sum += d * d; break;
      case kMae: sum += std::fabs(d); break;
      case kBce: sum -= y[i] * std::log(c) + (1.0 - y[i]) * std::log(1.0 - c); break;
      case kBceLogits: sum += std::max(x, 0.0) - x * y[i] + std::log1p(std::exp(-std::fabs(x))); break;
    }
  }
  return sum;
}

void point_loss_backward(int kind, float* dp, const float* p, const float* y, int64_t n, float scale, float eps) {
  const Clip clip(eps);
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(p[i]) - y[i], c = clip(p[i]);
    double g = 0;
    switch (kind) {
      case kMse: g = 2.0 * d; break;
      case kMae: g = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0); break;
      case kBce: g = clip.passes(p[i]) ? (1.0 - y[i]) / (1.0 - c) - y[i] / c : 0.0; break;
      case kBceLogits: g = 1.0 / (1.0 + std::exp(-double(p[i]))) - y[i]; break;
    }
    dp[i] = float(scale * g);
  }
}

void fill_loss(EltOps& t) {
  t.prob_xent_forward = prob_xent_forward;
  t.prob_xent_backward = prob_xent_backward;
  t.point_loss_forward = point_loss_forward;
  t.point_loss_backward = point_loss_backward;
}
}  // namespace ref
}  // namespace fastnn
