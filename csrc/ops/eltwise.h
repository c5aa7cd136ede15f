// Elementwise, softmax, loss and dropout op group.
//
// Conventions for this group (all arrays float32, C-contiguous, n = element count):
// - Kernels may run in place: y may alias x and dx may alias dy (backward writes dx, see fastnn.h).
#pragma once
#include <cstdint>

#include "ops/unary_ops.h"

namespace fastnn {
// SELU constants (Klambauer et al., as in Keras/torch).
constexpr float kSeluAlpha = 1.6732632423543772f;
constexpr float kSeluScale = 1.0507009873554805f;

// Pointwise losses, reduced over all n elements: forward returns the SUM of the per-element loss
// (in double, fixed chunking, so it is thread-count independent); backward writes
// dp = scale * d(loss_i)/dp_i (scale is the upstream gradient / n for a mean).
// kBce clips p to [eps, 1-eps] like Keras (gradient 0 where clipped); kBceLogits takes logits.
enum PointLoss : int { kMse = 0, kMae, kBce, kBceLogits, kPointLossCount };

struct EltOps {
  // Pointwise activation `op` (a UnaryOp, ops/unary_ops.h). y, x are (n,). alpha: leaky_relu's
  // negative slope, elu's alpha; ignored by the others.
  void (*unary_forward)(int op, float* y, const float* x, int64_t n, float alpha);
  // dx, dy, s are (n,); s is y or x (kUnaryOps[op].saves_output).
  void (*unary_backward)(int op, float* dx, const float* dy, const float* s, int64_t n, float alpha);

  // Softmax over the middle axis of a contiguous (outer, K, inner) view (inner == 1: the last axis).
  // log != 0 gives log_softmax. Max-subtracted; one read of x and one write of y per element on
  // the last-axis path (online max and sum).
  void (*softmax_forward)(float* y, const float* x, int64_t outer, int64_t K, int64_t inner, int log);
  // softmax:     dx = y * (dy - sum_K(dy * y))
  // log_softmax: dx = dy - exp(y) * sum_K(dy)          (y is the saved forward output)
  void (*softmax_backward)(float* dx, const float* dy, const float* y, int64_t outer, int64_t K, int64_t inner,
                           int log);

  // Fused softmax + cross-entropy over logits x (B, K). Targets are either integer class ids
  // `labels` (B,) (already range-checked: 0 <= label < K) or a (B, K) distribution `target`
  // (exactly one is non-null). Writes loss (B,) = lse - sum_k t_k x_k and lse (B,) = logsumexp(x_b).
  void (*softmax_xent_forward)(float* loss, float* lse, const float* x, const int32_t* labels, const float* target,
                               int64_t B, int64_t K);
  // dx (B, K) = dloss_b * (softmax(x_b) * sum_k t_k - t)   (softmax recomputed from x and lse).
  void (*softmax_xent_backward)(float* dx, const float* dloss, const float* x, const float* lse,
                                const int32_t* labels, const float* target, int64_t B, int64_t K);

  // Keras probability-input cross-entropy: q = p / sum_K(p), c = clip(q, eps, 1 - eps),
  // loss (B,) = -sum_k t_k log(c_k). Targets as for softmax_xent.
  void (*prob_xent_forward)(float* loss, const float* p, const int32_t* labels, const float* target, int64_t B,
                            int64_t K, float eps);
  // dp (B, K) = dloss_b * d(loss_b)/dp (zero through the clipped entries, as Keras's clip).
  void (*prob_xent_backward)(float* dp, const float* dloss, const float* p, const int32_t* labels,
                             const float* target, int64_t B, int64_t K, float eps);

  // p, y (n,). Returns sum_i loss(p_i, y_i).
  double (*point_loss_forward)(int kind, const float* p, const float* y, int64_t n, float eps);
  void (*point_loss_backward)(int kind, float* dp, const float* p, const float* y, int64_t n, float scale,
                              float eps);

  // Inverted dropout: y_i = keep_i ? x_i / float(1 - rate) : 0 (Keras: 1 - rate formed in double),
  // keep_i from Philox-4x32-10 keyed by
  // (seed, offset, i) (csrc/ops/philox.h). The backward pass is the same call on dy.
  void (*dropout)(float* y, const float* x, int64_t n, double rate, uint64_t seed, uint64_t offset);
};
}  // namespace fastnn
