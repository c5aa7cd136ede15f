// Batch normalization over the last axis of x (N, C), Keras semantics, with relu/relu6 fused into the
// store (and its mask into the backward). Channel sums are taken per fixed chunk of rows in double,
// then the chunks are added in order (thread-count independent); the elementwise passes split rows.
// Statistics are two-pass (mean, then the mean squared deviation), as the reference.
#include <algorithm>
#include <cmath>

#include "fastnn.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
constexpr int64_t kMaxChunks = 64;   // row chunks of the channel sums
constexpr int64_t kGrain = 32768;    // elements per thread below which a loop stays serial
constexpr int kSumSlot = 0, kCoefSlot = 1;

inline float activate(float v, int act) {
  if (act == kBnRelu) return v > 0.0f ? v : 0.0f;
  if (act == kBnRelu6) return v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
  return v;
}

// Row chunking of the sums: `rows` rows per chunk, `chunks` chunks (a function of N only).
struct Chunks {
  int64_t rows, chunks;
};
inline Chunks chunking(int64_t N) {
  const int64_t rows = std::max<int64_t>((N + kMaxChunks - 1) / kMaxChunks, 1);
  return {rows, (N + rows - 1) / rows};
}

// out[k*C + c] (k < K) = sum over rows n of f(n, c, k) (double), by chunks added in order. f writes
// its K terms for row n into t[k*C + c] for all c (a row at a time, so the loops over c vectorise).
template <int K, class F>
void channel_sums(double* out, int64_t N, int64_t C, const F& f) {
  const Chunks ck = chunking(N);
  double* part = reinterpret_cast<double*>(scratch(kSumSlot, size_t(ck.chunks * K * C * 2)));
  parallel_for(0, ck.chunks, std::max<int64_t>(kGrain / std::max<int64_t>(ck.rows * C, 1), 1),
               [&](int64_t k0, int64_t k1) {
                 for (int64_t ch = k0; ch < k1; ++ch) {
                   double* s = part + ch * K * C;
                   std::fill(s, s + K * C, 0.0);
                   for (int64_t n = ch * ck.rows; n < std::min(N, (ch + 1) * ck.rows); ++n) f(s, n);
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
    double* st = reinterpret_cast<double*>(scratch(kCoefSlot, size_t(4 * C)));  // sum, then squared deviations
    channel_sums<1>(st, N, C, [&](double* s, int64_t n) {
      const float* a = x + n * C;
      for (int64_t c = 0; c < C; ++c) s[c] += a[c];
    });
    for (int64_t c = 0; c < C; ++c) mean[c] = float(st[c] / double(N));
    channel_sums<1>(st + C, N, C, [&](double* s, int64_t n) {
      const float* a = x + n * C;
      for (int64_t c = 0; c < C; ++c) {
        const double d = double(a[c]) - double(mean[c]);
        s[c] += d * d;
      }
    });
    for (int64_t c = 0; c < C; ++c) {
      const double var = st[C + c] / double(N), m = double(p.momentum);
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
      for (int64_t c = 0; c < C; ++c) o[c] = activate((a[c] - mean[c]) * scale[c] + (beta ? beta[c] : 0.0f), act);
    }
  });
}

// dy masked by the activation's derivative at y
inline float masked(float g, float v, int act) {
  if (act == kBnRelu) return v > 0.0f ? g : 0.0f;
  if (act == kBnRelu6) return (v > 0.0f && v < 6.0f) ? g : 0.0f;
  return g;
}

void batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* y,
                        const float* gamma, const float* mean, const float* inv, const BatchNormParams& p) {
  const int64_t N = p.N, C = p.C;
  const int act = p.act;
  double* st = reinterpret_cast<double*>(scratch(kCoefSlot, size_t(4 * C)));  // sum g, sum g * xhat
  const bool need_sums = dgamma || dbeta || (dx && p.training);
  if (need_sums) {
    channel_sums<2>(st, N, C, [&](double* s, int64_t n) {
      const float *a = x + n * C, *g = dy + n * C, *v = y + n * C;
      for (int64_t c = 0; c < C; ++c) {
        const float gm = masked(g[c], act ? v[c] : 0.0f, act);
        s[c] += gm;
        s[C + c] += double(gm) * double((a[c] - mean[c]) * inv[c]);
      }
    });
    for (int64_t c = 0; c < C; ++c) {
      if (dbeta) dbeta[c] = float(st[c]);
      if (dgamma) dgamma[c] = float(st[C + c]);
    }
  }
  if (!dx) return;
  // dx = gamma*inv * (g - [training] (sum g + xhat * sum g*xhat) / N)
  float* coef = scratch(kSumSlot, size_t(3 * C));  // gi, mean g, mean g*xhat
  for (int64_t c = 0; c < C; ++c) {
    coef[c] = (gamma ? gamma[c] : 1.0f) * inv[c];
    coef[C + c] = p.training ? float(st[c] / double(N)) : 0.0f;
    coef[2 * C + c] = p.training ? float(st[C + c] / double(N)) : 0.0f;
  }
  for_rows(N, C, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const float *a = x + n * C, *g = dy + n * C, *v = y + n * C;
      float* d = dx + n * C;
      for (int64_t c = 0; c < C; ++c) {
        const float xhat = (a[c] - mean[c]) * inv[c];
        d[c] = coef[c] * (masked(g[c], act ? v[c] : 0.0f, act) - coef[C + c] - xhat * coef[2 * C + c]);
      }
    }
  });
}
}  // namespace

void fill_batchnorm(VisionOps& t) {
  t.batchnorm_forward = batchnorm_forward;
  t.batchnorm_backward = batchnorm_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
