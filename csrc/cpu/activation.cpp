// Pointwise activations (forward and backward) on the vectorised math of vmath.h.
// x, y, dy, dx are (n,) float32; y may alias x and dx may alias dy.
#include <cstdint>
#include <utility>

#include "cpu/vmath.h"
#include "fastnn.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
using vm::vf;

// Outputs at least this large (bytes) are written with streaming stores: they cannot stay in the
// 32 MiB L3 anyway, and skipping the read-for-ownership of y saves a third of the traffic.
constexpr int64_t kStreamBytes = int64_t(16) << 20;
// Elements per parallel task below which a kernel stays serial. Measured (bench: 1 vs 2 threads on
// L2-resident data): an OpenMP fork/join costs ~2.3 us here, so splitting pays once half the serial
// time exceeds it: ~32K elements for relu-like ops (~0.14 ns/element), ~12K for sigmoid/tanh/exp
// (~0.4 ns), ~6K for gelu/softplus/elu/selu (~0.8 ns and more).
constexpr int64_t kGrainCheap = 32 * 1024;     // relu, leaky_relu and the multiply-only backward kernels
constexpr int64_t kGrainMath = 16 * 1024;      // one exp/log/tanh per element
constexpr int64_t kGrainHeavy = 8 * 1024;      // erf (gelu), exp + log (softplus), expm1 (elu, selu)
constexpr int kLine = 16;                      // floats per 64-byte cache line (a multiple of W)

template <class F, size_t... I>
inline vf apply_at(const F& f, const float* const* src, int64_t i, std::index_sequence<I...>) {
  return f(vm::load<vf>(src[I] + i)...);
}

// y[i] = f(in[0][i], in[1][i], ...) for i < n; f maps N vf -> vf. Whole cache lines run in
// parallel; the unaligned head and the tail go through a zero-padded line on the calling thread.
template <size_t N, class F>
void map(float* y, const float* const (&in)[N], int64_t n, int64_t grain, const F& f) {
  using Seq = std::make_index_sequence<N>;
  auto partial = [&](int64_t i0, int64_t k) {  // k < kLine elements at i0
    alignas(64) float buf[N][kLine] = {};
    alignas(64) float out[kLine];
    const float* src[N];
    for (size_t a = 0; a < N; ++a) {
      for (int64_t j = 0; j < k; ++j) buf[a][j] = in[a][i0 + j];
      src[a] = buf[a];
    }
    for (int j = 0; j < kLine; j += vm::W) vm::store(out + j, apply_at(f, src, j, Seq{}));
    for (int64_t j = 0; j < k; ++j) y[i0 + j] = out[j];
  };
  const uintptr_t addr = reinterpret_cast<uintptr_t>(y);
  const int64_t head = addr % 4 ? 0 : int64_t((64 - addr % 64) % 64 / 4);
  if (head >= n) { partial(0, n); return; }
  if (head) partial(0, head);
  const int64_t lines = (n - head) / kLine;
  const bool stream = addr % 4 == 0 && n * int64_t(sizeof(float)) >= kStreamBytes;
  parallel_for(0, lines, grain / kLine, [&](int64_t b, int64_t e) {
    // NOTE: local copies: the streaming-store builtin may alias anything, which would make the
    // compiler reload every captured pointer and flag on each iteration.
    const float* src[N];
    for (size_t a = 0; a < N; ++a) src[a] = in[a];
    float* const out = y;
    const F fn = f;
    const int64_t i0 = head + b * kLine, i1 = head + e * kLine;
    if (stream) {
      for (int64_t i = i0; i < i1; i += vm::W) vm::store_stream(out + i, apply_at(fn, src, i, Seq{}));
      vm::stream_fence();
    } else {
      for (int64_t i = i0; i < i1; i += vm::W) vm::store(out + i, apply_at(fn, src, i, Seq{}));
    }
  });
  const int64_t done = head + lines * kLine;
  if (done < n) partial(done, n - done);
}
}  // namespace

void unary_forward(int op, float* y, const float* x, int64_t n, float alpha) {
  const float* in[1] = {x};
  // NOTE: comparisons are written so that NaN inputs give NaN outputs (v < 0 is false for NaN).
  switch (op) {
    case kRelu: return map(y, in, n, kGrainCheap, [](vf v) { return v < 0.0f ? vf{} : v; });
    case kLeakyRelu: return map(y, in, n, kGrainCheap, [alpha](vf v) { return v < 0.0f ? v * alpha : v; });
    case kElu: return map(y, in, n, kGrainHeavy, [alpha](vf v) { return v > 0.0f ? v : alpha * vm::expm1(v); });
    case kSelu:
      return map(y, in, n, kGrainHeavy,
                 [](vf v) { return kSeluScale * (v > 0.0f ? v : kSeluAlpha * vm::expm1(v)); });
    case kGelu: return map(y, in, n, kGrainHeavy, [](vf v) { return vm::gelu(v); });
    case kSilu: return map(y, in, n, kGrainMath, [](vf v) { return v * vm::sigmoid(v); });
    case kSoftplus:
      return map(y, in, n, kGrainHeavy,
                 [](vf v) { return (v > 0.0f ? v : vf{}) + vm::log1p(vm::exp(-vm::vabs(v))); });
    case kSigmoid: return map(y, in, n, kGrainMath, [](vf v) { return vm::sigmoid(v); });
    case kTanh: return map(y, in, n, kGrainMath, [](vf v) { return vm::tanh(v); });
    case kExp: return map(y, in, n, kGrainMath, [](vf v) { return vm::exp(v); });
    case kLog: return map(y, in, n, kGrainMath, [](vf v) { return vm::log(v); });
  }
}

void unary_backward(int op, float* dx, const float* dy, const float* s, int64_t n, float alpha) {
  const float* in[2] = {dy, s};  // s: y for relu/sigmoid/tanh/exp, x otherwise
  switch (op) {
    case kRelu: return map(dx, in, n, kGrainCheap, [](vf g, vf y) { return y > 0.0f ? g : vf{}; });
    case kLeakyRelu: return map(dx, in, n, kGrainCheap, [alpha](vf g, vf x) { return x > 0.0f ? g : g * alpha; });
    case kElu:
      return map(dx, in, n, kGrainMath, [alpha](vf g, vf x) { return x > 0.0f ? g : g * alpha * vm::exp(x); });
    case kSelu:
      return map(dx, in, n, kGrainMath, [](vf g, vf x) {
        return kSeluScale * (x > 0.0f ? g : g * kSeluAlpha * vm::exp(x));
      });
    case kGelu:
      return map(dx, in, n, kGrainHeavy, [](vf g, vf x) { return g * vm::gelu_grad(x); });
    case kSilu:
      return map(dx, in, n, kGrainMath, [](vf g, vf x) {
        const vf sg = vm::sigmoid(x);
        return g * sg * (1.0f + x * (1.0f - sg));
      });
    case kSoftplus: return map(dx, in, n, kGrainMath, [](vf g, vf x) { return g * vm::sigmoid(x); });
    case kSigmoid: return map(dx, in, n, kGrainCheap, [](vf g, vf y) { return g * y * (1.0f - y); });
    case kTanh: return map(dx, in, n, kGrainCheap, [](vf g, vf y) { return g * (1.0f - y * y); });
    case kExp: return map(dx, in, n, kGrainCheap, [](vf g, vf y) { return g * y; });
    case kLog: return map(dx, in, n, kGrainCheap, [](vf g, vf x) { return g / x; });
  }
}

void fill_softmax(EltOps& t);
void fill_loss(EltOps& t);
void fill_dropout(EltOps& t);

void fill_elt(EltOps& t) {
  t.unary_forward = unary_forward;
  t.unary_backward = unary_backward;
  fill_softmax(t);
  fill_loss(t);
  fill_dropout(t);
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
