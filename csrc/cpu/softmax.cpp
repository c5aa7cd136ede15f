// softmax / log_softmax over the middle axis of a contiguous (outer, K, inner) array, and the fused
// softmax + cross-entropy.
// inner == 1 (the last axis, the hot case): one task per row, vectors along K (the ragged end with
// masked loads/stores). Rows of up to 16 vectors (K <= 256 on AVX-512) live in registers: one read
// and one write per element, max and sum as fixed trees (row_forward_regs; ~2x the throughput of
// re-reading the row from L1). Longer rows are read from memory once (max, then exp+sum and the
// scaling re-read it from L1/L2) and written once.
// inner > 1: vectors along inner (W adjacent columns at a time, a masked vector for the rest),
// strided by `inner` along K.
#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "cpu/vmath.h"
#include "fastnn.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
using vm::vf;
constexpr int64_t kGrain = 16 * 1024;  // elements: serial below (~0.5 ns/element vs a ~2.3 us fork/join)
constexpr float kNegInf = -__builtin_inff();

// A run of m (1..W) lanes at element stride `stride`: p[0], p[stride], ... are its vectors' starts.
// Loads fill the lanes past m with `fill`; stores leave them alone.
struct Lanes {
  int m;
  vf ld(const float* p, float fill = 0.0f) const { return m == vm::W ? vm::load<vf>(p) : vm::load_part(p, m, fill); }
  void st(float* p, vf v) const { if (m == vm::W) vm::store(p, v); else vm::store_part(p, v, m); }
};

// ---- the reductions and passes shared by both layouts --------------------------------------------
// A slice is K vectors of `l.m` lanes, vector k at p + k * step (last axis: step W, each vector
// another part of the row; other axes: step inner, each lane another column).
// For the last axis the lanes are finally reduced to one value (vm::hmax / vm::hsum: a fixed tree).
template <class F>
inline vf fold(int64_t K, int64_t step, vf init, const F& f) {
  vf acc = init;
  for (int64_t k = 0; k < K; ++k) acc = f(acc, k * step);
  return acc;
}

// Last axis: row of K floats, as ceil(K / W) vectors, the last one masked.
template <class F>
inline void row_loop(int64_t K, const F& f) {
  int64_t k = 0;
  for (; k + vm::W <= K; k += vm::W) f(k, Lanes{vm::W});
  if (k < K) f(k, Lanes{int(K - k)});
}

float row_max(const float* x, int64_t K) {
  vf m = vm::splat<vf>(kNegInf);
  row_loop(K, [&](int64_t k, Lanes l) { m = vm::vmax(m, l.ld(x + k, kNegInf)); });
  return vm::hmax(m);
}

// sum over the row of f(k, lanes) (f returns 0 in masked lanes).
template <class F>
float row_sum(int64_t K, const F& f) {
  vf s{};
  row_loop(K, [&](int64_t k, Lanes l) { s += f(k, l); });
  return vm::hsum(s);
}

void row_forward(float* y, const float* x, int64_t K, bool log) {
  const float m = row_max(x, K);
  if (log) {
    const float s = row_sum(K, [&](int64_t k, Lanes l) { return vm::exp(l.ld(x + k, kNegInf) - m); });
    const float ls = vm::log(vm::splat<vm::v1>(s))[0];
    row_loop(K, [&](int64_t k, Lanes l) { l.st(y + k, (l.ld(x + k) - m) - ls); });
  } else {
    const float s = row_sum(K, [&](int64_t k, Lanes l) {
      const vf e = vm::exp(l.ld(x + k, kNegInf) - m);
      l.st(y + k, e);
      return e;
    });
    const float r = 1.0f / s;
    row_loop(K, [&](int64_t k, Lanes l) { l.st(y + k, l.ld(y + k) * r); });
  }
}

// ---- rows of NV vectors held in registers ---------------------------------------------------------
// v[0..NV) is the row (the last vector's lanes past K filled with -inf): reduce v[lo, lo+n) with a
// pairwise tree (a template recursion, so everything stays in registers).
template <int Lo, int N, int NV, class F>
inline vf tree(const vf (&v)[NV], const F& f) {
  if constexpr (N == 1) return v[Lo];
  else return f(tree<Lo, N / 2>(v, f), tree<Lo + N / 2, N - N / 2>(v, f));
}

// e^d for d <= 0 (d = -inf, a masked lane, gives 0): the terms of a softmax row. AVX-512: as 2^t,
// t = d*log2(e) rounded once (relative error <= |d| * 6e-8, i.e. absolute error below 3e-8 of the
// row's largest term), split by roundscale into n + f, 2^f a degree-6 minimax polynomial (1e-7),
// scalef. 10 ops against exp()'s 14: the row is compute-bound. Other ISAs: vm::exp_core.
inline vf exp_nonpos(vf d) {
#if defined(CPU_CAPABILITY_AVX512)
  // max(c, x) returns x when x is NaN: NaN passes (and spreads over the row through the sum)
  const __m512 t = _mm512_maskz_max_ps(0xFFFF, _mm512_set1_ps(-150.0f),  // 2^-150 rounds to 0
                                       _mm512_mul_ps((__m512)d, _mm512_set1_ps(1.44269504088896341f)));
  const __m512 n = _mm512_maskz_roundscale_ps(0xFFFF, t, _MM_FROUND_TO_NEAREST_INT);
  const vf f = (vf)_mm512_sub_ps(t, n);
  vf p = vm::splat<vf>(1.53532877e-4f);
  p = p * f + 1.33988541e-3f;
  p = p * f + 9.61843785e-3f;
  p = p * f + 5.55033237e-2f;
  p = p * f + 2.40226477e-1f;
  p = p * f + 6.93147182e-1f;
  p = p * f + 1.0f;
  return (vf)_mm512_maskz_scalef_ps(0xFFFF, (__m512)p, n);
#else
  return vm::exp_core(vm::vmax(vm::splat<vf>(-104.0f), d));
#endif
}

template <int NV>
void row_forward_regs(float* y, const float* x, int64_t K, bool log) {
  constexpr int W = vm::W;
  const int tail = int(K - (NV - 1) * W);  // 1..W
  vf v[NV];
  for (int j = 0; j < NV - 1; ++j) v[j] = vm::load<vf>(x + j * W);
  v[NV - 1] = Lanes{tail}.ld(x + (NV - 1) * W, kNegInf);
  const vf m = vm::splat<vf>(vm::hmax(tree<0, NV>(v, [](vf a, vf b) { return vm::vmax(a, b); })));
  vf e[NV];
  for (int j = 0; j < NV; ++j) e[j] = exp_nonpos(v[j] - m);
  const float s = vm::hsum(tree<0, NV>(e, [](vf a, vf b) { return a + b; }));
  if (log) {
    const vf ls = vm::log(vm::splat<vf>(s));
    for (int j = 0; j < NV; ++j) e[j] = (v[j] - m) - ls;  // not v - (m + ls): m + ls would round at m's scale
  } else {
    const float r = 1.0f / s;
    for (int j = 0; j < NV; ++j) e[j] *= r;
  }
  for (int j = 0; j < NV - 1; ++j) vm::store(y + j * W, e[j]);
  Lanes{tail}.st(y + (NV - 1) * W, e[NV - 1]);
}

constexpr int kRegVectors = 16;  // rows of at most this many vectors take row_forward_regs
using RowFn = void (*)(float*, const float*, int64_t, bool);
template <size_t... I>
constexpr std::array<RowFn, sizeof...(I)> row_fns(std::index_sequence<I...>) {
  return {&row_forward_regs<int(I) + 1>...};
}
constexpr auto kRowFns = row_fns(std::make_index_sequence<kRegVectors>{});

void row_backward(float* dx, const float* dy, const float* y, int64_t K, bool log) {
  if (log) {
    const float s = row_sum(K, [&](int64_t k, Lanes l) { return l.ld(dy + k); });
    row_loop(K, [&](int64_t k, Lanes l) { l.st(dx + k, l.ld(dy + k) - vm::exp(l.ld(y + k)) * s); });
  } else {
    const float s = row_sum(K, [&](int64_t k, Lanes l) { return l.ld(dy + k) * l.ld(y + k); });
    row_loop(K, [&](int64_t k, Lanes l) { l.st(dx + k, l.ld(y + k) * (l.ld(dy + k) - s)); });
  }
}

// ---- other axes: l.m adjacent columns, element k of each at p[k * inner] ---------------------------
void col_forward(float* y, const float* x, int64_t K, int64_t inner, Lanes l, bool log) {
  const vf m = fold(K, inner, vm::splat<vf>(kNegInf), [&](vf a, int64_t o) { return vm::vmax(a, l.ld(x + o)); });
  if (log) {
    const vf s = fold(K, inner, vf{}, [&](vf a, int64_t o) { return a + vm::exp(l.ld(x + o) - m); });
    const vf ls = vm::log(s);
    for (int64_t k = 0; k < K; ++k) l.st(y + k * inner, (l.ld(x + k * inner) - m) - ls);
  } else {
    const vf s = fold(K, inner, vf{}, [&](vf a, int64_t o) {
      const vf e = vm::exp(l.ld(x + o) - m);
      l.st(y + o, e);
      return a + e;
    });
    const vf r = 1.0f / s;
    for (int64_t k = 0; k < K; ++k) l.st(y + k * inner, l.ld(y + k * inner) * r);
  }
}

void col_backward(float* dx, const float* dy, const float* y, int64_t K, int64_t inner, Lanes l, bool log) {
  const vf s = fold(K, inner, vf{}, [&](vf a, int64_t o) {
    return a + (log ? l.ld(dy + o) : l.ld(dy + o) * l.ld(y + o));
  });
  for (int64_t k = 0; k < K; ++k) {
    const vf g = l.ld(dy + k * inner), yk = l.ld(y + k * inner);
    l.st(dx + k * inner, log ? g - vm::exp(yk) * s : yk * (g - s));
  }
}

// Runs row(o) for inner == 1, else col(offset, lanes) over blocks of W columns (the last masked).
template <class Row, class Col>
void over_slices(int64_t outer, int64_t K, int64_t inner, const Row& row, const Col& col) {
  if (inner == 1) {
    parallel_for(0, outer, std::max<int64_t>(1, kGrain / K), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) row(o);
    });
    return;
  }
  const int64_t per = (inner + vm::W - 1) / vm::W;  // column blocks per slice
  parallel_for(0, outer * per, std::max<int64_t>(1, kGrain / (K * vm::W)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / per, c = (t % per) * vm::W;
      col(o * K * inner + c, Lanes{int(std::min<int64_t>(vm::W, inner - c))});
    }
  });
}

void softmax_forward(float* y, const float* x, int64_t outer, int64_t K, int64_t inner, int log) {
  // NOTE: streaming stores for outputs >= 16 MiB measured no faster (38.4 vs 38.8 GB/s, 8
  // interleaved runs on two threads): the register rows are compute-bound, not bound by RFO traffic.
  const int64_t nv = (K + vm::W - 1) / vm::W;
  const RowFn row = nv >= 1 && nv <= kRegVectors ? kRowFns[nv - 1] : row_forward;
  over_slices(
      outer, K, inner, [&](int64_t o) { row(y + o * K, x + o * K, K, log); },
      [&](int64_t off, Lanes l) { col_forward(y + off, x + off, K, inner, l, log); });
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t outer, int64_t K, int64_t inner,
                      int log) {
  over_slices(
      outer, K, inner, [&](int64_t o) { row_backward(dx + o * K, dy + o * K, y + o * K, K, log); },
      [&](int64_t off, Lanes l) { col_backward(dx + off, dy + off, y + off, K, inner, l, log); });
}

// ---- fused softmax + cross-entropy: x (B, K), labels (B,) or target (B, K) ----------------------
float row_lse(const float* x, int64_t K) {
  const float m = row_max(x, K);
  const float s = row_sum(K, [&](int64_t k, Lanes l) { return vm::exp(l.ld(x + k, kNegInf) - m); });
  return m + vm::log(vm::splat<vm::v1>(s))[0];
}

void softmax_xent_forward(float* loss, float* lse, const float* x, const int32_t* labels, const float* target,
                          int64_t B, int64_t K) {
  parallel_for(0, B, std::max<int64_t>(1, kGrain / K), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* xb = x + b * K;
      const float l = row_lse(xb, K);
      lse[b] = l;
      if (labels) {
        loss[b] = l - xb[labels[b]];
      } else {
        const float* tb = target + b * K;
        loss[b] = row_sum(K, [&](int64_t k, Lanes ln) { return ln.ld(tb + k) * (l - ln.ld(xb + k)); });
      }
    }
  });
}

void softmax_xent_backward(float* dx, const float* dloss, const float* x, const float* lse, const int32_t* labels,
                           const float* target, int64_t B, int64_t K) {
  parallel_for(0, B, std::max<int64_t>(1, kGrain / K), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* xb = x + b * K;
      float* db = dx + b * K;
      const float g = dloss[b], l = lse[b];
      if (labels) {
        row_loop(K, [&](int64_t k, Lanes ln) { ln.st(db + k, g * vm::exp(ln.ld(xb + k) - l)); });
        db[labels[b]] -= g;
      } else {
        const float* tb = target + b * K;
        const float st = row_sum(K, [&](int64_t k, Lanes ln) { return ln.ld(tb + k); });
        row_loop(K, [&](int64_t k, Lanes ln) {
          ln.st(db + k, g * (vm::exp(ln.ld(xb + k) - l) * st - ln.ld(tb + k)));
        });
      }
    }
  });
}
}  // namespace

void fill_softmax(EltOps& t) {
  t.softmax_forward = softmax_forward;
  t.softmax_backward = softmax_backward;
  t.softmax_xent_forward = softmax_xent_forward;
  t.softmax_xent_backward = softmax_xent_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
