// Batch normalization over the last axis of x (N, C), Keras semantics, with relu/relu6 fused into the
// store (and its mask into the backward); layer normalization of each row of x (N, C). Channel sums are taken
// per fixed chunk of rows in double, then the chunks are added in order (thread-count independent); the
// elementwise passes split rows. Batch statistics: one pass of shifted sums (see batchnorm_forward).
#include <algorithm>
#include <cmath>

#include "fastnn.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
constexpr int64_t kMaxChunks = 64;   // row chunks of the channel sums
constexpr int64_t kGrain = 32768;    // elements per thread below which a loop stays serial
constexpr int64_t kSubRows = 16;   // rows summed in float before the double chunk sums
constexpr int kSumSlot = 0, kCoefSlot = 1, kRowSlot = 2, kShiftSlot = 3;

inline float activate(float v, int act) {
  if (act == kBnRelu) return v > 0.0f ? v : 0.0f;
  if (act == kBnRelu6) return v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
  return v;
}

// The value before the activation, (x - mean) * scale + beta: one expression for the forward's store and the
// backward's recomputed mask, so both round alike.
inline float pre_activation(float a, float m, float scale, const float* beta, int64_t c) {
  return (a - m) * scale + (beta ? beta[c] : 0.0f);
}

// Row chunking of the sums: `rows` rows per chunk, `chunks` chunks (a function of N only).
struct Chunks {
  int64_t rows, chunks;
};
inline Chunks chunking(int64_t N) {
  const int64_t rows = std::max<int64_t>((N + kMaxChunks - 1) / kMaxChunks, 1);
  return {rows, (N + rows - 1) / rows};
}

// out[k*C + c] (k < K) = sum over rows n of f's terms (double), by chunks added in order. f(t, n) adds row n's K
// terms into the float buffer t[k*C + c] for all c (a row at a time, so the loops over c vectorise); t is
// flushed into the chunk's double sums every kSubRows rows (float sums of a few rows lose nothing that
// matters, double over the whole batch).
template <int K, class F>
void channel_sums(double* out, int64_t N, int64_t C, const F& f) {
  const Chunks ck = chunking(N);
  double* part = reinterpret_cast<double*>(scratch(kSumSlot, size_t(ck.chunks * K * C * 2)));
  parallel_for(0, ck.chunks, std::max<int64_t>(kGrain / std::max<int64_t>(ck.rows * C, 1), 1),
               [&](int64_t k0, int64_t k1) {
                 float* t = scratch(kRowSlot, size_t(K * C));  // this thread's
                 for (int64_t ch = k0; ch < k1; ++ch) {
                   double* s = part + ch * K * C;
                   std::fill(s, s + K * C, 0.0);
                   const int64_t end = std::min(N, (ch + 1) * ck.rows);
                   for (int64_t n0 = ch * ck.rows; n0 < end; n0 += kSubRows) {
                     std::fill(t, t + K * C, 0.0f);
                     for (int64_t n = n0; n < std::min(end, n0 + kSubRows); ++n) f(t, n);
                     for (int64_t i = 0; i < K * C; ++i) s[i] += t[i];
                   }
                 }
               });
  std::fill(out, out + K * C, 0.0);
  for (int64_t ch = 0; ch < ck.chunks; ++ch)
    for (int64_t i = 0; i < K * C; ++i) out[i] += part[ch * K * C + i];
}

// Calls f(r0, r1) over row ranges in parallel (each row by one thread).
template <class F>
void for_rows(int64_t N, int64_t C, const F& f) {
  parallel_for(0, N, std::max<int64_t>(kGrain / std::max<int64_t>(C, 1), 1), f);
}

void batchnorm_forward(float* y, float* mean, float* inv, float* moving_mean, float* moving_var, const float* x,
                       const float* gamma, const float* beta, const BatchNormParams& p) {
  const int64_t N = p.N, C = p.C;
  if (p.training) {
    // One pass over x: sums of d = x - K and d*d per channel, K = the first row (a shift that keeps
    // E[d^2] - E[d]^2 well conditioned when the mean is far from 0; var = that, mean = K + E[d]).
    double* st = reinterpret_cast<double*>(scratch(kCoefSlot, size_t(4 * C)));  // sum d, sum d*d
    float* shift = scratch(kShiftSlot, size_t(C));
    for (int64_t c = 0; c < C; ++c) shift[c] = N ? x[c] : 0.0f;
    channel_sums<2>(st, N, C, [&](float* __restrict s, int64_t n) {
      const float* __restrict a = x + n * C;
      for (int64_t c = 0; c < C; ++c) {
        const float d = a[c] - shift[c];
        s[c] += d;
        s[C + c] += d * d;
      }
    });
    for (int64_t c = 0; c < C; ++c) {
      const double md = st[c] / double(N), m = double(p.momentum);
      const double var = std::max(st[C + c] / double(N) - md * md, 0.0), mu = double(shift[c]) + md;
      mean[c] = float(mu);
      inv[c] = float(1.0 / std::sqrt(var + double(p.epsilon)));
      if (moving_mean) moving_mean[c] = float(moving_mean[c] * m + double(mean[c]) * (1.0 - m));
      if (moving_var) moving_var[c] = float(moving_var[c] * m + var * (1.0 - m));
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      mean[c] = moving_mean[c];
      inv[c] = float(1.0 / std::sqrt(double(moving_var[c]) + double(p.epsilon)));
    }
  }
  // y = (x - mean) * (inv * gamma) + beta
  float* scale = scratch(kSumSlot, size_t(C));
  for (int64_t c = 0; c < C; ++c) scale[c] = inv[c] * (gamma ? gamma[c] : 1.0f);
  const int act = p.act;
  for_rows(N, C, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const float* a = x + n * C;
      float* o = y + n * C;
      for (int64_t c = 0; c < C; ++c) o[c] = activate(pre_activation(a[c], mean[c], scale[c], beta, c), act);
    }
  });
}

// dy masked by the activation's derivative at v (y, or the pre-activation: the same mask)
inline float masked(float g, float v, int act) {
  if (act == kBnRelu) return v > 0.0f ? g : 0.0f;
  if (act == kBnRelu6) return (v > 0.0f && v < 6.0f) ? g : 0.0f;
  return g;
}

// y == null with an activation: the mask is taken at the pre-activation recomputed from x exactly as the forward
// computed it (pre_activation, same scale), so x, dy (and dx) are the only full arrays touched.
void batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* y,
                        const float* gamma, const float* beta, const float* mean, const float* inv,
                        const BatchNormParams& p) {
  const int64_t N = p.N, C = p.C;
  const int act = p.act;
  const int mode = act == kBnNone ? 0 : (y ? 1 : 2);  // 0 no mask, 1 mask at y, 2 mask at the recomputed value
  double* st = reinterpret_cast<double*>(scratch(kCoefSlot, size_t(4 * C)));  // sum g, sum g * xhat
  float* coef = scratch(kShiftSlot, size_t(4 * C));  // gi, mean g, mean g*xhat, forward scale (not channel_sums' slot)
  float* scale = coef + 3 * C;
  for (int64_t c = 0; c < C; ++c) scale[c] = inv[c] * (gamma ? gamma[c] : 1.0f);
  const bool need_sums = dgamma || dbeta || (dx && p.training);
  if (need_sums) {
    channel_sums<2>(st, N, C, [&](float* __restrict s, int64_t n) {
      const float *__restrict a = x + n * C, *__restrict g = dy + n * C;
      if (mode == 0) {  // (y unread: it may be null)
        for (int64_t c = 0; c < C; ++c) {
          s[c] += g[c];
          s[C + c] += g[c] * ((a[c] - mean[c]) * inv[c]);
        }
      } else if (mode == 1) {
        const float* __restrict v = y + n * C;
        for (int64_t c = 0; c < C; ++c) {
          const float gm = masked(g[c], v[c], act);
          s[c] += gm;
          s[C + c] += gm * ((a[c] - mean[c]) * inv[c]);
        }
      } else {
        for (int64_t c = 0; c < C; ++c) {
          const float gm = masked(g[c], pre_activation(a[c], mean[c], scale[c], beta, c), act);
          s[c] += gm;
          s[C + c] += gm * ((a[c] - mean[c]) * inv[c]);
        }
      }
    });
    for (int64_t c = 0; c < C; ++c) {
      if (dbeta) dbeta[c] = float(st[c]);
      if (dgamma) dgamma[c] = float(st[C + c]);
    }
  }
  if (!dx) return;
  // dx = gamma*inv * (g - [training] (sum g + xhat * sum g*xhat) / N)
  for (int64_t c = 0; c < C; ++c) {
    coef[c] = (gamma ? gamma[c] : 1.0f) * inv[c];
    coef[C + c] = p.training ? float(st[c] / double(N)) : 0.0f;
    coef[2 * C + c] = p.training ? float(st[C + c] / double(N)) : 0.0f;
  }
  for_rows(N, C, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const float *__restrict a = x + n * C, *__restrict g = dy + n * C;
      float* __restrict d = dx + n * C;
      if (mode == 0) {
        for (int64_t c = 0; c < C; ++c) d[c] = coef[c] * (g[c] - coef[C + c] - (a[c] - mean[c]) * inv[c] * coef[2 * C + c]);
      } else if (mode == 1) {
        const float* __restrict v = y + n * C;
        for (int64_t c = 0; c < C; ++c)
          d[c] = coef[c] * (masked(g[c], v[c], act) - coef[C + c] - (a[c] - mean[c]) * inv[c] * coef[2 * C + c]);
      } else {
        for (int64_t c = 0; c < C; ++c)
          d[c] = coef[c] * (masked(g[c], pre_activation(a[c], mean[c], scale[c], beta, c), act) - coef[C + c] -
                            (a[c] - mean[c]) * inv[c] * coef[2 * C + c]);
      }
    }
  });
}
// Row n's mean and inv = 1/sqrt(biased var + eps), two passes in double (C values: cheap next to the store).
void layernorm_forward(float* y, float* mean, float* inv, const float* x, const float* gamma, const float* beta,
                       int64_t N, int64_t C, float epsilon) {
  for_rows(N, C, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const float* __restrict a = x + n * C;
      float* __restrict o = y + n * C;
      double s = 0.0, q = 0.0;
      for (int64_t c = 0; c < C; ++c) s += a[c];
      const float m = float(s / double(C));
      for (int64_t c = 0; c < C; ++c) q += double(a[c] - m) * double(a[c] - m);
      const float iv = float(1.0 / std::sqrt(q / double(C) + double(epsilon)));
      mean[n] = m;
      inv[n] = iv;
      for (int64_t c = 0; c < C; ++c) o[c] = (a[c] - m) * iv * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
    }
  });
}

// dgamma/dbeta: column sums by fixed row chunks (channel_sums); dx: per row, from the row's sums of g = dy*gamma
// and g*xhat.
void layernorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* gamma,
                        const float* mean, const float* inv, int64_t N, int64_t C) {
  if (dgamma || dbeta) {
    double* st = reinterpret_cast<double*>(scratch(kCoefSlot, size_t(4 * C)));  // sum dy, sum dy * xhat
    channel_sums<2>(st, N, C, [&](float* __restrict s, int64_t n) {
      const float *__restrict a = x + n * C, *__restrict g = dy + n * C;
      const float m = mean[n], iv = inv[n];
      for (int64_t c = 0; c < C; ++c) {
        s[c] += g[c];
        s[C + c] += g[c] * ((a[c] - m) * iv);
      }
    });
    for (int64_t c = 0; c < C; ++c) {
      if (dbeta) dbeta[c] = float(st[c]);
      if (dgamma) dgamma[c] = float(st[C + c]);
    }
  }
  if (!dx) return;
  for_rows(N, C, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const float *__restrict a = x + n * C, *__restrict g = dy + n * C;
      float* __restrict d = dx + n * C;
      const float m = mean[n], iv = inv[n];
      double sg = 0.0, sgx = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        const float gg = g[c] * (gamma ? gamma[c] : 1.0f);
        sg += gg;
        sgx += double(gg) * double((a[c] - m) * iv);
      }
      const float mg = float(sg / double(C)), mgx = float(sgx / double(C));
      for (int64_t c = 0; c < C; ++c) d[c] = iv * (g[c] * (gamma ? gamma[c] : 1.0f) - mg - (a[c] - m) * iv * mgx);
    }
  });
}
}  // namespace

void fill_batchnorm(VisionOps& t) {
  t.batchnorm_forward = batchnorm_forward;
  t.batchnorm_backward = batchnorm_backward;
}

void fill_layernorm(VisionOps& t) {
  t.layernorm_forward = layernorm_forward;
  t.layernorm_backward = layernorm_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
