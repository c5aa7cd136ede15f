// Elementwise, softmax, loss and dropout kernels: the CPU EltOps (csrc/ops/eltwise.h) on the GPU.
// Activations run in float (the CPU ISA kernels do too); softmax and losses accumulate in double, as the
// reference does, one thread per row: rows are (batch, classes)-sized and far from any bandwidth limit.
// Every output element is computed by one thread in a fixed order, so results do not depend on the launch.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/kernels.h"
#include "ops/eltwise.h"
#include "ops/philox.h"

namespace fastnn {
namespace cuda {
namespace {
constexpr int kThreads = 256;
inline int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return int(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}
#define FOR_EACH(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__device__ inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ inline float cdf(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }

// Formulas of csrc/ref/activation_ref.cpp, in float; a = alpha.
__device__ inline float act_forward(int op, float x, float a) {
  switch (op) {
    case kRelu: return x < 0.0f ? 0.0f : x;
    case kLeakyRelu: return x < 0.0f ? a * x : x;
    case kElu: return x > 0.0f ? x : a * expm1f(x);
    case kSelu: return kSeluScale * (x > 0.0f ? x : kSeluAlpha * expm1f(x));
    case kGelu: return x * cdf(x);
    case kSilu: return x * sigm(x);
    case kSoftplus: return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
    case kSigmoid: return sigm(x);
    case kTanh: return tanhf(x);
    case kExp: return expf(x);
    case kLog: return logf(x);
    case kSoftsign: return x / (1.0f + fabsf(x));
    case kHardSigmoid: return fminf(fmaxf(x / 6.0f + 0.5f, 0.0f), 1.0f);
    case kRelu6: return fminf(fmaxf(x, 0.0f), 6.0f);
  }
  return x;
}
// g = upstream gradient, s = saved y or x (kUnaryOps[op].saves_output).
__device__ inline float act_backward(int op, float g, float s, float a) {
  switch (op) {
    case kRelu: return s > 0.0f ? g : 0.0f;
    case kLeakyRelu: return s > 0.0f ? g : a * g;
    case kElu: return s > 0.0f ? g : g * a * expf(s);
    case kSelu: return kSeluScale * (s > 0.0f ? g : g * kSeluAlpha * expf(s));
    case kGelu: return g * (cdf(s) + s * expf(-0.5f * s * s) * 0.39894228040143268f);
    case kSilu: { const float q = sigm(s); return g * (q * (1.0f + s * (1.0f - q))); }
    case kSoftplus: return g * sigm(s);
    case kSigmoid: return g * s * (1.0f - s);
    case kTanh: return g * (1.0f - s * s);
    case kExp: return g * s;
    case kLog: return g / s;
    case kSoftsign: { const float d = 1.0f + fabsf(s); return g / (d * d); }
    case kHardSigmoid: return s > -3.0f && s < 3.0f ? g / 6.0f : 0.0f;
    case kRelu6: return s > 0.0f && s < 6.0f ? g : 0.0f;
  }
  return g;
}

__global__ void unary_forward_k(int op, float* y, const float* x, int64_t n, float a) {
  FOR_EACH(i, n) y[i] = act_forward(op, x[i], a);
}
__global__ void unary_backward_k(int op, float* dx, const float* dy, const float* s, int64_t n, float a) {
  FOR_EACH(i, n) dx[i] = act_backward(op, dy[i], s[i], a);
}

// One thread per (outer, inner) row of K elements, strided by inner (csrc/ref/softmax_ref.cpp).
__global__ void softmax_forward_k(float* y, const float* x, int64_t outer, int64_t K, int64_t inner, int log) {
  FOR_EACH(r, outer * inner) {
    const int64_t off = (r / inner) * K * inner + r % inner;
    const float* xs = x + off;
    float* ys = y + off;
    double m = xs[0], s = 0;
    for (int64_t k = 1; k < K; ++k) m = fmax(m, double(xs[k * inner]));
    for (int64_t k = 0; k < K; ++k) s += exp(xs[k * inner] - m);
    const double ls = ::log(s);
    for (int64_t k = 0; k < K; ++k) ys[k * inner] = float(log ? (xs[k * inner] - m) - ls : exp(xs[k * inner] - m) / s);
  }
}
__global__ void softmax_backward_k(float* dx, const float* dy, const float* y, int64_t outer, int64_t K, int64_t inner,
                                   int log) {
  FOR_EACH(r, outer * inner) {
    const int64_t off = (r / inner) * K * inner + r % inner;
    double s = 0;
    for (int64_t k = 0; k < K; ++k) s += log ? double(dy[off + k * inner]) : double(dy[off + k * inner]) * y[off + k * inner];
    for (int64_t k = 0; k < K; ++k) {
      const double g = dy[off + k * inner], yk = y[off + k * inner];
      dx[off + k * inner] = float(log ? g - exp(yk) * s : yk * (g - s));
    }
  }
}

// Class weight t_bk; a label outside [0, K) raises the flag (the binding turns it into a ValueError).
__device__ inline double t_of(const int32_t* labels, const float* target, int64_t b, int64_t k, int64_t K) {
  return labels ? (labels[b] == k ? 1.0 : 0.0) : double(target[b * K + k]);
}
__device__ inline bool label_ok(const int32_t* labels, int64_t b, int64_t K, int* bad) {
  if (!labels || (labels[b] >= 0 && labels[b] < K)) return true;
  atomicExch(bad, 1);
  return false;
}

__global__ void softmax_xent_forward_k(float* loss, float* lse, const float* x, const int32_t* labels,
                                       const float* target, int64_t B, int64_t K, int* bad) {
  FOR_EACH(b, B) {
    const float* xb = x + b * K;
    double m = xb[0], s = 0, l = 0;
    for (int64_t k = 1; k < K; ++k) m = fmax(m, double(xb[k]));
    for (int64_t k = 0; k < K; ++k) s += exp(xb[k] - m);
    const double lse_b = m + ::log(s);
    if (!label_ok(labels, b, K, bad)) l = nan("");
    else if (labels) l = lse_b - xb[labels[b]];
    else for (int64_t k = 0; k < K; ++k) l += t_of(labels, target, b, k, K) * (lse_b - xb[k]);
    lse[b] = float(lse_b);
    loss[b] = float(l);
  }
}
__global__ void softmax_xent_backward_k(float* dx, const float* dloss, const float* x, const float* lse,
                                        const int32_t* labels, const float* target, int64_t B, int64_t K, int* bad) {
  FOR_EACH(b, B) {
    const bool ok = label_ok(labels, b, K, bad);
    double st = 0;
    if (labels) st = 1.0;
    else for (int64_t k = 0; k < K; ++k) st += target[b * K + k];
    for (int64_t k = 0; k < K; ++k) {
      const double p = exp(double(x[b * K + k]) - lse[b]);
      dx[b * K + k] = ok ? float(dloss[b] * (p * st - t_of(labels, target, b, k, K))) : nanf("");
    }
  }
}

// Keras clips float32 values against float32 bounds (csrc/ref/loss_ref.cpp Clip).
struct Clip {
  float lo, hi;
  __device__ explicit Clip(float eps) : lo(eps), hi(1.0f - eps) {}
  __device__ float operator()(float v) const { return fminf(fmaxf(v, lo), hi); }
  __device__ bool passes(float v) const { return v >= lo && v <= hi; }
};

__global__ void prob_xent_forward_k(float* loss, const float* p, const int32_t* labels, const float* target,
                                    int64_t B, int64_t K, float eps, int* bad) {
  const Clip clip(eps);
  FOR_EACH(b, B) {
    float s = 0;
    for (int64_t k = 0; k < K; ++k) s += p[b * K + k];
    double l = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double t = t_of(labels, target, b, k, K);
      if (t != 0) l -= t * ::log(double(clip(p[b * K + k] / s)));
    }
    loss[b] = label_ok(labels, b, K, bad) ? float(l) : nanf("");
  }
}
__global__ void prob_xent_backward_k(float* dp, const float* dloss, const float* p, const int32_t* labels,
                                     const float* target, int64_t B, int64_t K, float eps, int* bad) {
  const Clip clip(eps);
  FOR_EACH(b, B) {
    const bool ok = label_ok(labels, b, K, bad);
    float s = 0;
    for (int64_t k = 0; k < K; ++k) s += p[b * K + k];
    auto g_of = [&](int64_t k) {
      const double t = t_of(labels, target, b, k, K);
      const float q = p[b * K + k] / s;
      return (t != 0 && clip.passes(q)) ? -t / clip(q) : 0.0;
    };
    double gq = 0;
    for (int64_t k = 0; k < K; ++k) gq += g_of(k) * (p[b * K + k] / s);
    for (int64_t k = 0; k < K; ++k) dp[b * K + k] = ok ? float(dloss[b] * (g_of(k) - gq) / s) : nanf("");
  }
}

__device__ inline double point_loss(int kind, float pf, float yf, const Clip& clip) {
  const double d = double(pf) - yf, c = clip(pf), x = pf, y = yf;
  switch (kind) {
    case kMse: return d * d;
    case kMae: return fabs(d);
    case kBce: return -(y * ::log(c) + (1.0 - y) * ::log(1.0 - c));
    case kBceLogits: return fmax(x, 0.0) - x * y + log1p(exp(-fabs(x)));
  }
  return 0;
}
// Pass 1: block b sums the elements i with i / chunk == b ... in a fixed tree; pass 2 sums the blocks in order.
__global__ void point_loss_partials_k(int kind, const float* p, const float* y, int64_t n, float eps, double* part) {
  __shared__ double sh[kThreads];
  const Clip clip(eps);
  const int64_t chunk = (n + gridDim.x - 1) / gridDim.x, lo = blockIdx.x * chunk;
  const int64_t hi = lo + chunk < n ? lo + chunk : n;
  double acc = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) acc += point_loss(kind, p[i], y[i], clip);
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}
__global__ void sum_in_order_k(const double* part, int n, double* out) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += part[i];
  *out = s;
}
__global__ void point_loss_backward_k(int kind, float* dp, const float* p, const float* y, int64_t n, float scale,
                                      float eps) {
  const Clip clip(eps);
  FOR_EACH(i, n) {
    const double d = double(p[i]) - y[i], c = clip(p[i]);
    double g = 0;
    switch (kind) {
      case kMse: g = 2.0 * d; break;
      case kMae: g = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0); break;
      case kBce: g = clip.passes(p[i]) ? (1.0 - y[i]) / (1.0 - c) - y[i] / c : 0.0; break;
      case kBceLogits: g = 1.0 / (1.0 + exp(-double(p[i]))) - y[i]; break;
    }
    dp[i] = float(scale * g);
  }
}

// Word `word` of Philox-4x32-10 (csrc/ops/philox.h, FASTNN_HD: the CPU's own function) at counter c of
// stream (seed, offset), so masks equal the CPU's.
__device__ inline uint32_t philox_word(uint64_t c, uint64_t offset, uint64_t seed, int word) {
  uint32_t r[4];
  philox::philox4x32_10(uint32_t(c), uint32_t(c >> 32), uint32_t(offset), uint32_t(offset >> 32), uint32_t(seed),
                        uint32_t(seed >> 32), r);
  return r[word];
}
// Element i: counter (i / 64) * 16 + i % 16, word (i % 64) / 16 (the stream layout of philox.h).
__global__ void dropout_k(float* y, const float* x, int64_t n, uint64_t thr, float keep, uint64_t seed,
                          uint64_t offset) {
  FOR_EACH(i, n) {
    const uint64_t c = uint64_t(i / 64) * 16 + uint64_t(i % 16);
    y[i] = philox_word(c, offset, seed, int((i % 64) / 16)) >= thr ? x[i] / keep : 0.0f;
  }
}
__global__ void fill_k(float* y, float v, int64_t n) { FOR_EACH(i, n) y[i] = v; }
__global__ void broadcast_k(float* y, const float* src, int64_t n) { FOR_EACH(i, n) y[i] = *src; }
}  // namespace

void unary_forward(int op, float* y, const float* x, int64_t n, float alpha) {
  if (n) unary_forward_k<<<blocks_for(n), kThreads, 0, launch_stream()>>>(op, y, x, n, alpha);
}
void unary_backward(int op, float* dx, const float* dy, const float* s, int64_t n, float alpha) {
  if (n) unary_backward_k<<<blocks_for(n), kThreads, 0, launch_stream()>>>(op, dx, dy, s, n, alpha);
}
void softmax_forward(float* y, const float* x, int64_t outer, int64_t K, int64_t inner, int log) {
  if (outer * inner) softmax_forward_k<<<blocks_for(outer * inner), kThreads, 0, launch_stream()>>>(y, x, outer, K, inner, log);
}
void softmax_backward(float* dx, const float* dy, const float* y, int64_t outer, int64_t K, int64_t inner, int log) {
  if (outer * inner) softmax_backward_k<<<blocks_for(outer * inner), kThreads, 0, launch_stream()>>>(dx, dy, y, outer, K, inner, log);
}
void softmax_xent_forward(float* loss, float* lse, const float* x, const int32_t* labels, const float* target,
                          int64_t B, int64_t K, int* bad) {
  if (B) softmax_xent_forward_k<<<blocks_for(B), kThreads, 0, launch_stream()>>>(loss, lse, x, labels, target, B, K, bad);
}
void softmax_xent_backward(float* dx, const float* dloss, const float* x, const float* lse, const int32_t* labels,
                           const float* target, int64_t B, int64_t K, int* bad) {
  if (B) softmax_xent_backward_k<<<blocks_for(B), kThreads, 0, launch_stream()>>>(dx, dloss, x, lse, labels, target, B, K, bad);
}
void prob_xent_forward(float* loss, const float* p, const int32_t* labels, const float* target, int64_t B, int64_t K,
                       float eps, int* bad) {
  if (B) prob_xent_forward_k<<<blocks_for(B), kThreads, 0, launch_stream()>>>(loss, p, labels, target, B, K, eps, bad);
}
void prob_xent_backward(float* dp, const float* dloss, const float* p, const int32_t* labels, const float* target,
                        int64_t B, int64_t K, float eps, int* bad) {
  if (B) prob_xent_backward_k<<<blocks_for(B), kThreads, 0, launch_stream()>>>(dp, dloss, p, labels, target, B, K, eps, bad);
}
void point_loss_forward(int kind, const float* p, const float* y, int64_t n, float eps, double* sum_dev,
                        double* partials) {
  point_loss_partials_k<<<kPointLossBlocks, kThreads, 0, launch_stream()>>>(kind, p, y, n, eps, partials);
  sum_in_order_k<<<1, 1, 0, launch_stream()>>>(partials, kPointLossBlocks, sum_dev);
}
void point_loss_backward(int kind, float* dp, const float* p, const float* y, int64_t n, float scale, float eps) {
  if (n) point_loss_backward_k<<<blocks_for(n), kThreads, 0, launch_stream()>>>(kind, dp, p, y, n, scale, eps);
}
void dropout(float* y, const float* x, int64_t n, double rate, uint64_t seed, uint64_t offset) {
  const uint64_t thr = philox::drop_threshold(rate);
  if (n) dropout_k<<<blocks_for(n), kThreads, 0, launch_stream()>>>(y, x, n, thr, float(1.0 - rate), seed, offset);
}
void fill(float* y, float v, int64_t n) {
  if (n) fill_k<<<blocks_for(n), kThreads, 0, launch_stream()>>>(y, v, n);
}
void broadcast(float* y, const float* src, int64_t n) {
  if (n) broadcast_k<<<blocks_for(n), kThreads, 0, launch_stream()>>>(y, src, n);
}
}  // namespace cuda
}  // namespace fastnn
