// Vision op group: depthwise convolution and batch normalization (NHWC, Keras layouts).
#pragma once
#include <cstdint>

#include "ops/conv.h"

namespace fastnn {
// Batch normalization over the last axis of x viewed as (N, C) (N = product of the leading axes).
// act: kBnNone, kBnRelu (max(y, 0)) or kBnRelu6 (min(max(y, 0), 6)), fused into the store.
enum BnAct : int { kBnNone = 0, kBnRelu = 1, kBnRelu6 = 2 };
struct BatchNormParams {
  int64_t N, C;
  float epsilon, momentum;
  int training;  // 1: batch statistics (biased variance, as Keras) + moving averages; 0: moving statistics
  int act;       // a BnAct
};

struct VisionOps {
  // Depthwise convolution. x is (B,H,W,C), kernel is (KH,KW,C,DM), bias (C*DM,) or null, out is
  // (B,OH,OW,C*DM): out[..., c*DM + m] = sum_taps x[..., c] * kernel[kh, kw, c, m]. p.OC = C*DM.
  void (*depthwise_conv2d_forward)(float* out, const float* x, const float* kernel, const float* bias,
                                   const Conv2dParams& p);
  // Writes dx (B,H,W,C), dkernel (KH,KW,C,DM), dbias (C*DM,); any may be null (skipped).
  void (*depthwise_conv2d_backward)(float* dx, float* dkernel, float* dbias, const float* dout, const float* x,
                                    const float* kernel, const Conv2dParams& p);
  // y = act((x - mean) * inv * gamma + beta); gamma/beta may be null (scale 1, offset 0).
  // training: mean (C,) and inv (C,) = 1/sqrt(var + eps) of the batch are written, and moving_mean /
  // moving_var (C,) (when not null) become moving * momentum + batch * (1 - momentum).
  // inference: mean/inv are written from moving_mean/moving_var (read only).
  void (*batchnorm_forward)(float* y, float* mean, float* inv, float* moving_mean, float* moving_var,
                            const float* x, const float* gamma, const float* beta, const BatchNormParams& p);
  // Gradients given dy (N,C): dy is first masked by the fused activation's derivative at y (the
  // forward's output; unread when act is kBnNone). y may be null: the mask is then recomputed from x, mean, inv,
  // gamma and beta as the forward computed y (one array less to read). dx (N,C), dgamma (C,), dbeta (C,); any
  // may be null. training: the batch statistics' own gradient is included (mean and variance depend on x).
  void (*batchnorm_backward)(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* y,
                             const float* gamma, const float* beta, const float* mean, const float* inv,
                             const BatchNormParams& p);

  // Layer normalization of each row of x (N, C): y = (x - mean_n) * inv_n * gamma + beta with the row's mean and
  // biased variance, inv_n = 1/sqrt(var_n + epsilon); writes mean (N,) and inv (N,); gamma/beta may be null.
  void (*layernorm_forward)(float* y, float* mean, float* inv, const float* x, const float* gamma, const float* beta,
                            int64_t N, int64_t C, float epsilon);
  // dx (N,C), dgamma (C,), dbeta (C,) given dy (N,C); any output may be null.
  void (*layernorm_backward)(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                             const float* gamma, const float* mean, const float* inv, int64_t N, int64_t C);
};
}  // namespace fastnn
