// softmax / log_softmax over the middle axis of a contiguous (outer, K, inner) array.
// inner == 1 (the last axis, the hot case): one task per row, vectors along K; a row is read from
// memory once (max, then exp+sum and the scaling re-read it from L1/L2) and written once.
// inner > 1: vectors along inner (W adjacent columns at a time, the tail one column at a time),
// strided by `inner` along K.
// Also the fused softmax + cross-entropy (one row pass per direction, logsumexp saved).
#include <algorithm>
#include <cstdint>

#include "cpu/vmath.h"
#include "fastnn.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
using vm::v1;
using vm::vf;
constexpr int64_t kGrain = 16 * 1024;  // elements per task below which softmax stays serial
constexpr float kNegInf = -__builtin_inff();

// ---- last axis: x, y, dy, dx are one row of K contiguous floats ------------------------------
// Loops over full vectors then single lanes; f(V, k) for each, V = vf or v1.
template <class F>
inline void row_loop(int64_t K, const F& f) {
  int64_t k = 0;
  for (; k + vm::W <= K; k += vm::W) f(vf{}, k);
  for (; k < K; ++k) f(v1{}, k);
}

float row_max(const float* x, int64_t K) {
  vf mv = vm::splat<vf>(kNegInf);
  v1 m1 = vm::splat<v1>(kNegInf);
  row_loop(K, [&](auto v, int64_t k) {
    using V = decltype(v);
    if constexpr (sizeof(V) == sizeof(vf)) mv = vm::vmax(mv, vm::load<vf>(x + k));
    else m1 = vm::vmax(m1, vm::load<v1>(x + k));
  });
  return vm::vmax(vm::splat<v1>(vm::hmax(mv)), m1)[0];
}

// sum_k f(V at k) with one vector accumulator and one scalar lane, combined in a fixed order.
template <class F>
float row_sum(int64_t K, const F& f) {
  vf sv{};
  v1 s1{};
  row_loop(K, [&](auto v, int64_t k) {
    if constexpr (sizeof(v) == sizeof(vf)) sv += f(v, k);
    else s1 += f(v, k);
  });
  return vm::hsum(sv) + s1[0];
}

void row_forward(float* y, const float* x, int64_t K, bool log) {
  const float m = row_max(x, K);
  if (log) {
    const float s = row_sum(K, [&](auto v, int64_t k) { return vm::exp(vm::load<decltype(v)>(x + k) - m); });
    const float ls = vm::log(vm::splat<v1>(s))[0];
    row_loop(K, [&](auto v, int64_t k) {
      using V = decltype(v);
      vm::store(y + k, (vm::load<V>(x + k) - m) - ls);
    });
  } else {
    const float s = row_sum(K, [&](auto v, int64_t k) {
      using V = decltype(v);
      const V e = vm::exp(vm::load<V>(x + k) - m);
      vm::store(y + k, e);
      return e;
    });
    const float r = 1.0f / s;
    row_loop(K, [&](auto v, int64_t k) {
      using V = decltype(v);
      vm::store(y + k, vm::load<V>(y + k) * r);
    });
  }
}

void row_backward(float* dx, const float* dy, const float* y, int64_t K, bool log) {
  if (log) {
    const float s = row_sum(K, [&](auto v, int64_t k) { return vm::load<decltype(v)>(dy + k); });
    row_loop(K, [&](auto v, int64_t k) {
      using V = decltype(v);
      vm::store(dx + k, vm::load<V>(dy + k) - vm::exp(vm::load<V>(y + k)) * s);
    });
  } else {
    const float s = row_sum(K, [&](auto v, int64_t k) {
      using V = decltype(v);
      return vm::load<V>(dy + k) * vm::load<V>(y + k);
    });
    row_loop(K, [&](auto v, int64_t k) {
      using V = decltype(v);
      vm::store(dx + k, vm::load<V>(y + k) * (vm::load<V>(dy + k) - s));
    });
  }
}

// ---- other axes: V = vf (W adjacent columns) or v1 (one column); element k at p[k * inner] --------
template <class V>
void col_forward(float* y, const float* x, int64_t K, int64_t inner, bool log) {
  V m = vm::load<V>(x);
  for (int64_t k = 1; k < K; ++k) m = vm::vmax(m, vm::load<V>(x + k * inner));
  V s{};
  if (log) {
    for (int64_t k = 0; k < K; ++k) s += vm::exp(vm::load<V>(x + k * inner) - m);
    const V ls = vm::log(s);
    for (int64_t k = 0; k < K; ++k) vm::store(y + k * inner, (vm::load<V>(x + k * inner) - m) - ls);
  } else {
    for (int64_t k = 0; k < K; ++k) {
      const V e = vm::exp(vm::load<V>(x + k * inner) - m);
      vm::store(y + k * inner, e);
      s += e;
    }
    const V r = 1.0f / s;
    for (int64_t k = 0; k < K; ++k) vm::store(y + k * inner, vm::load<V>(y + k * inner) * r);
  }
}

template <class V>
void col_backward(float* dx, const float* dy, const float* y, int64_t K, int64_t inner, bool log) {
  V s{};
  for (int64_t k = 0; k < K; ++k)
    s += log ? vm::load<V>(dy + k * inner) : vm::load<V>(dy + k * inner) * vm::load<V>(y + k * inner);
  for (int64_t k = 0; k < K; ++k) {
    const V g = vm::load<V>(dy + k * inner), yk = vm::load<V>(y + k * inner);
    vm::store(dx + k * inner, log ? g - vm::exp(yk) * s : yk * (g - s));
  }
}

// Runs row(o) for inner == 1, else col<V>(o, first column) over W-column blocks and tail columns.
template <class Row, class Col>
void over_slices(int64_t outer, int64_t K, int64_t inner, const Row& row, const Col& col) {
  if (inner == 1) {
    parallel_for(0, outer, std::max<int64_t>(1, kGrain / K), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) row(o);
    });
    return;
  }
  const int64_t full = inner / vm::W, tail = inner % vm::W, per = full + tail;  // tasks per slice
  parallel_for(0, outer * per, std::max<int64_t>(1, kGrain / (K * vm::W)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / per, j = t % per;
      if (j < full) col(vf{}, o * K * inner + j * vm::W);
      else col(v1{}, o * K * inner + full * vm::W + (j - full));
    }
  });
}

void softmax_forward(float* y, const float* x, int64_t outer, int64_t K, int64_t inner, int log) {
  over_slices(
      outer, K, inner, [&](int64_t o) { row_forward(y + o * K, x + o * K, K, log); },
      [&](auto v, int64_t off) { col_forward<decltype(v)>(y + off, x + off, K, inner, log); });
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t outer, int64_t K, int64_t inner,
                      int log) {
  over_slices(
      outer, K, inner, [&](int64_t o) { row_backward(dx + o * K, dy + o * K, y + o * K, K, log); },
      [&](auto v, int64_t off) { col_backward<decltype(v)>(dx + off, dy + off, y + off, K, inner, log); });
}

// ---- fused softmax + cross-entropy: x (B, K), labels (B,) or target (B, K) ----------------------
float row_lse(const float* x, int64_t K) {
  const float m = row_max(x, K);
  const float s = row_sum(K, [&](auto v, int64_t k) { return vm::exp(vm::load<decltype(v)>(x + k) - m); });
  return m + vm::log(vm::splat<v1>(s))[0];
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
        loss[b] = row_sum(K, [&](auto v, int64_t k) {
          using V = decltype(v);
          return vm::load<V>(tb + k) * (l - vm::load<V>(xb + k));
        });
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
        row_loop(K, [&](auto v, int64_t k) {
          using V = decltype(v);
          vm::store(db + k, g * vm::exp(vm::load<V>(xb + k) - l));
        });
        db[labels[b]] -= g;
      } else {
        const float* tb = target + b * K;
        const float st = row_sum(K, [&](auto v, int64_t k) { return vm::load<decltype(v)>(tb + k); });
        row_loop(K, [&](auto v, int64_t k) {
          using V = decltype(v);
          vm::store(db + k, g * (vm::exp(vm::load<V>(xb + k) - l) * st - vm::load<V>(tb + k)));
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
