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


// One specialisation per UnaryOp (ops/unary_ops.h): the parallel grain of each direction, and the
// per-register forward(x) and backward(dy, s), s = y or x as the op's saves_output says.
// NOTE: comparisons are written so that NaN inputs give NaN outputs (v < 0 is false for NaN) and
// clamps are vmin(hi, vmax(lo, v)) (maxps/minps return their second operand, here NaN).
template <int op>
struct Unary;  // no primary: an op without its kernel does not compile

template <>
struct Unary<kRelu> {
  static constexpr int64_t fgrain = kGrainCheap, bgrain = kGrainCheap;
  static vf forward(vf v, float) { return v < 0.0f ? vf{} : v; }
  static vf backward(vf g, vf y, float) { return y > 0.0f ? g : vf{}; }
};
template <>
struct Unary<kLeakyRelu> {
  static constexpr int64_t fgrain = kGrainCheap, bgrain = kGrainCheap;
  static vf forward(vf v, float alpha) { return v < 0.0f ? v * alpha : v; }
  static vf backward(vf g, vf x, float alpha) { return x > 0.0f ? g : g * alpha; }
};
template <>
struct Unary<kElu> {
  static constexpr int64_t fgrain = kGrainHeavy, bgrain = kGrainMath;
  static vf forward(vf v, float alpha) { return v > 0.0f ? v : alpha * vm::expm1(v); }
  static vf backward(vf g, vf x, float alpha) { return x > 0.0f ? g : g * alpha * vm::exp(x); }
};
template <>
struct Unary<kSelu> {
  static constexpr int64_t fgrain = kGrainHeavy, bgrain = kGrainMath;
  static vf forward(vf v, float) { return kSeluScale * (v > 0.0f ? v : kSeluAlpha * vm::expm1(v)); }
  static vf backward(vf g, vf x, float) { return kSeluScale * (x > 0.0f ? g : g * kSeluAlpha * vm::exp(x)); }
};
template <>
struct Unary<kGelu> {
  static constexpr int64_t fgrain = kGrainHeavy, bgrain = kGrainHeavy;
  static vf forward(vf v, float) { return vm::gelu(v); }
  static vf backward(vf g, vf x, float) { return g * vm::gelu_grad(x); }
};
template <>
struct Unary<kSilu> {
  static constexpr int64_t fgrain = kGrainMath, bgrain = kGrainMath;
  static vf forward(vf v, float) { return v * vm::sigmoid(v); }
  static vf backward(vf g, vf x, float) {
    const vf sg = vm::sigmoid(x);
    return g * sg * (1.0f + x * (1.0f - sg));
  }
};
template <>
struct Unary<kSoftplus> {
  static constexpr int64_t fgrain = kGrainHeavy, bgrain = kGrainMath;
  static vf forward(vf v, float) { return (v > 0.0f ? v : vf{}) + vm::log1p(vm::exp(-vm::vabs(v))); }
  static vf backward(vf g, vf x, float) { return g * vm::sigmoid(x); }
};
template <>
struct Unary<kSigmoid> {
  static constexpr int64_t fgrain = kGrainMath, bgrain = kGrainCheap;
  static vf forward(vf v, float) { return vm::sigmoid(v); }
  static vf backward(vf g, vf y, float) { return g * y * (1.0f - y); }
};
template <>
struct Unary<kTanh> {
  static constexpr int64_t fgrain = kGrainMath, bgrain = kGrainCheap;
  static vf forward(vf v, float) { return vm::tanh(v); }
  static vf backward(vf g, vf y, float) { return g * (1.0f - y * y); }
};
template <>
struct Unary<kExp> {
  static constexpr int64_t fgrain = kGrainMath, bgrain = kGrainCheap;
  static vf forward(vf v, float) { return vm::exp(v); }
  static vf backward(vf g, vf y, float) { return g * y; }
};
template <>
struct Unary<kLog> {
  static constexpr int64_t fgrain = kGrainMath, bgrain = kGrainCheap;
  static vf forward(vf v, float) { return vm::log(v); }
  static vf backward(vf g, vf x, float) { return g / x; }
};
// Divisions, not reciprocal approximations: a few ulp of the float64 reference.
template <>
struct Unary<kSoftsign> {
  static constexpr int64_t fgrain = kGrainMath, bgrain = kGrainMath;
  static vf forward(vf v, float) { return v / (1.0f + vm::vabs(v)); }
  // dy / (1 + |x|)^2 as (dy * r) * r: (1 + |x|)^2 would overflow for |x| > 1.8e19
  static vf backward(vf g, vf x, float) {
    const vf r = 1.0f / (1.0f + vm::vabs(x));
    return g * r * r;
  }
};
template <>
struct Unary<kHardSigmoid> {
  static constexpr int64_t fgrain = kGrainCheap, bgrain = kGrainCheap;
  // (x + 3) / 6 == x / 6 + 0.5, without the cancellation of x / 6 + 0.5 near x = -3 (x + 3 is exact there)
  static vf forward(vf v, float) { return vm::vmin(vm::splat<vf>(1.0f), vm::vmax(vf{}, (v + 3.0f) / 6.0f)); }
  static vf backward(vf g, vf x, float) { return ((x > -3.0f) & (x < 3.0f)) ? g / 6.0f : vf{}; }
};
template <>
struct Unary<kRelu6> {
  static constexpr int64_t fgrain = kGrainCheap, bgrain = kGrainCheap;
  static vf forward(vf v, float) { return vm::vmin(vm::splat<vf>(6.0f), vm::vmax(vf{}, v)); }
  static vf backward(vf g, vf x, float) { return ((x > 0.0f) & (x < 6.0f)) ? g : vf{}; }
};

template <int op>
void forward_op(float* y, const float* x, int64_t n, float alpha) {
  const float* in[1] = {x};
  map(y, in, n, Unary<op>::fgrain, [alpha](vf v) { return Unary<op>::forward(v, alpha); });
}
template <int op>
void backward_op(float* dx, const float* dy, const float* s, int64_t n, float alpha) {
  const float* in[2] = {dy, s};
  map(dx, in, n, Unary<op>::bgrain, [alpha](vf g, vf sv) { return Unary<op>::backward(g, sv, alpha); });
}
}  // namespace

void unary_forward(int op, float* y, const float* x, int64_t n, float alpha) {
  visit_unary(op, [&](auto id) { forward_op<decltype(id)::value>(y, x, n, alpha); });
}

void unary_backward(int op, float* dx, const float* dy, const float* s, int64_t n, float alpha) {
  visit_unary(op, [&](auto id) { backward_op<decltype(id)::value>(dx, dy, s, n, alpha); });
}

void fill_unary(EltOps& t) {
  t.unary_forward = unary_forward;
  t.unary_backward = unary_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
