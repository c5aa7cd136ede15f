// Register-tiled kernels for convolutions with few taps (K = KH*KW*C <= kSmallK, e.g. a first layer
// on 1- or 3-channel images). There the GEMM's packing and its K-loop overheads dominate: the whole
// kernel matrix (K, OC) lives in L1 and every output row is a short sum of K broadcasts times rows
// of it. Written with GCC vector extensions (one vector = the ISA's register width), so the same
// source is SSE on DEFAULT, AVX2 ymm and AVX-512 zmm: no intrinsics.
// Included only by conv2d.cpp (inner-loop section of this ISA's namespace).
#pragma once
#include "cpu/vmath.h"
#include "fastnn.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace small {
constexpr int kVec = vm::W;
constexpr int64_t kSmallK = 32;
using vec = vm::vf;
inline vec load(const float* p) { return vm::load<vec>(p); }
using vm::store;
// NOTE: not vm::splat (0 + a): a - 0 is exact for every a (also -0.0), so it folds to a bare broadcast.
inline vec splat(float a) { return a - vec{}; }

// Row m of the (virtual) col matrix is src[m][off[m][t]], t < K: interior rows read x in place
// through the tap offset table, rows touching the padding read their im2col copy (off = 0, 1, ...).
struct Rows {
  const float* const* src;
  const int64_t* const* off;
  float at(int64_t m, int64_t t) const { return src[m][off[m][t]]; }
};

// out[r, :NV*kVec] = bias + row r of the tile · w[:K, :NV*kVec] (then relu), rows [0, R) of a tile.
template <int R, int NV, bool RELU>
inline void fwd_tile(float* out, int64_t ldo, Rows rows, int64_t K, const float* w, int64_t ldw, const float* bias) {
  vec acc[R][NV];
  for (int v = 0; v < NV; ++v) {
    const vec b = bias ? load(bias + v * kVec) : vec{};
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (int64_t t = 0; t < K; ++t) {
    vec wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = load(w + t * ldw + v * kVec);
    for (int r = 0; r < R; ++r) {
      const vec a = splat(rows.at(r, t));
      for (int v = 0; v < NV; ++v) acc[r][v] += a * wv[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) store(out + r * ldo + v * kVec, RELU ? (acc[r][v] > 0 ? acc[r][v] : vec{}) : acc[r][v]);
}

template <bool RELU>
inline void forward_act(float* out, Rows rows, const float* w, const float* bias, int64_t M, int64_t K, int64_t OC) {
  constexpr int R = 4;
  for (int64_t j = 0; j < OC; j += 2 * kVec) {
    const bool two = j + 2 * kVec <= OC;
    const float* bj = bias ? bias + j : nullptr;
    int64_t m = 0;
    for (; m + R <= M; m += R) {
      const Rows rm{rows.src + m, rows.off + m};
      if (two) fwd_tile<R, 2, RELU>(out + m * OC + j, OC, rm, K, w + j, OC, bj);
      else fwd_tile<R, 1, RELU>(out + m * OC + j, OC, rm, K, w + j, OC, bj);
    }
    for (; m < M; ++m) {
      const Rows rm{rows.src + m, rows.off + m};
      if (two) fwd_tile<1, 2, RELU>(out + m * OC + j, OC, rm, K, w + j, OC, bj);
      else fwd_tile<1, 1, RELU>(out + m * OC + j, OC, rm, K, w + j, OC, bj);
    }
  }
}

// out (M, OC) = rows (M, K) · w (K, OC) (+ bias) (then relu). Requires OC % kVec == 0.
inline void forward(float* out, Rows rows, const float* w, const float* bias, bool relu, int64_t M, int64_t K,
                    int64_t OC) {
  if (relu) forward_act<true>(out, rows, w, bias, M, K, OC);
  else forward_act<false>(out, rows, w, bias, M, K, OC);
}

// dw[t0 : t0+T, :NV*kVec] (+)= rows[:, t0 : t0+T]ᵀ · dy (M, NV*kVec): the T x NV tile stays in
// registers over all rows.
template <int T, int NV>
inline void dw_tile(float* dw, int64_t ldw, Rows rows, int64_t t0, const float* dy, int64_t ldy, int64_t M,
                    bool accumulate) {
  vec acc[T][NV];
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < NV; ++v) acc[t][v] = accumulate ? load(dw + t * ldw + v * kVec) : vec{};
  for (int64_t m = 0; m < M; ++m) {
    vec g[NV];
    for (int v = 0; v < NV; ++v) g[v] = load(dy + m * ldy + v * kVec);
    for (int t = 0; t < T; ++t) {
      const vec a = splat(rows.at(m, t0 + t));
      for (int v = 0; v < NV; ++v) acc[t][v] += a * g[v];
    }
  }
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < NV; ++v) store(dw + t * ldw + v * kVec, acc[t][v]);
}

template <int NV>
inline void dw_taps(float* dw, int64_t ldw, Rows rows, int64_t t0, int64_t T, const float* dy, int64_t ldy, int64_t M,
                    bool acc) {
  switch (T) {  // T <= kMaxTaps: one pass over the rows for up to kMaxTaps taps
    case 1: return dw_tile<1, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 2: return dw_tile<2, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 3: return dw_tile<3, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 4: return dw_tile<4, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 5: return dw_tile<5, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 6: return dw_tile<6, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 7: return dw_tile<7, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 8: return dw_tile<8, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 9: return dw_tile<9, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 10: return dw_tile<10, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    case 11: return dw_tile<11, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
    default: return dw_tile<12, NV>(dw, ldw, rows, t0, dy, ldy, M, acc);
  }
}

// dw (K, OC) = (accumulate ? dw : 0) + rowsᵀ · dy. Requires OC % kVec == 0.
inline void weight_grad(float* dw, Rows rows, const float* dy, int64_t M, int64_t K, int64_t OC, bool accumulate) {
  constexpr int64_t kMaxTaps = 12;  // 12 taps x 2 vectors = 24 accumulators
  const int64_t passes = (K + kMaxTaps - 1) / kMaxTaps;
  for (int64_t j = 0; j < OC; j += 2 * kVec)
    for (int64_t i = 0; i < passes; ++i) {  // equal tiles: K = 13 gives 7 + 6, not 12 + 1
      const int64_t t0 = K * i / passes, T = K * (i + 1) / passes - t0;
      if (j + 2 * kVec <= OC) dw_taps<2>(dw + t0 * OC + j, OC, rows, t0, T, dy + j, OC, M, accumulate);
      else dw_taps<1>(dw + t0 * OC + j, OC, rows, t0, T, dy + j, OC, M, accumulate);
    }
}

// sums (N,) += column sums of rows (M, N), each column summed in row order (any thread count).
inline void colsum(float* sums, const float* rows, int64_t M, int64_t N) {
  int64_t j = 0;
  for (; j + 2 * kVec <= N; j += 2 * kVec) {  // two independent chains hide the add latency
    vec a0 = load(sums + j), a1 = load(sums + j + kVec);
    for (int64_t m = 0; m < M; ++m) {
      a0 += load(rows + m * N + j);
      a1 += load(rows + m * N + j + kVec);
    }
    store(sums + j, a0);
    store(sums + j + kVec, a1);
  }
  for (; j < N; ++j) {
    float a = sums[j];
    for (int64_t m = 0; m < M; ++m) a += rows[m * N + j];
    sums[j] = a;
  }
}

// wt (OC, KP) = w (K, OC)ᵀ with columns K..KP zero, KP = K rounded up to whole vectors.
inline int64_t padded_k(int64_t K) { return (K + kVec - 1) / kVec * kVec; }
inline void transpose_kernel(float* wt, const float* w, int64_t K, int64_t OC) {
  const int64_t KP = padded_k(K);
  for (int64_t oc = 0; oc < OC; ++oc)
    for (int64_t t = 0; t < KP; ++t) wt[oc * KP + t] = t < K ? w[t * OC + oc] : 0.0f;
}

// dcol rows [0, R) (row stride KP) = dy rows · wt (OC, KP), the KP/kVec vectors in registers.
template <int R, int NV>
inline void dx_tile(float* dcol, int64_t KP, const float* dy, int64_t OC, const float* wt) {
  vec acc[R][NV] = {};
  for (int64_t oc = 0; oc < OC; ++oc) {
    vec wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = load(wt + oc * KP + v * kVec);
    for (int r = 0; r < R; ++r) {
      const vec a = splat(dy[r * OC + oc]);
      for (int v = 0; v < NV; ++v) acc[r][v] += a * wv[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) store(dcol + r * KP + v * kVec, acc[r][v]);
}

template <int NV>
inline void input_grad_nv(float* dcol, const float* dy, const float* wt, int64_t M, int64_t OC) {
  constexpr int R = 8 / NV;
  const int64_t KP = NV * kVec;
  int64_t m = 0;
  for (; m + R <= M; m += R) dx_tile<R, NV>(dcol + m * KP, KP, dy + m * OC, OC, wt);
  for (; m < M; ++m) dx_tile<1, NV>(dcol + m * KP, KP, dy + m * OC, OC, wt);
}

// dcol (M, KP) = dy (M, OC) · wtᵀ-as-stored (wt is (OC, KP) from transpose_kernel).
inline void input_grad(float* dcol, const float* dy, const float* wt, int64_t M, int64_t K, int64_t OC) {
  switch (padded_k(K) / kVec) {
    case 1: return input_grad_nv<1>(dcol, dy, wt, M, OC);
    case 2: return input_grad_nv<2>(dcol, dy, wt, M, OC);
    case 4: return input_grad_nv<4>(dcol, dy, wt, M, OC);
    default:
      for (int64_t m = 0; m < M; ++m) {  // 3 or > 4 vectors (narrow ISAs): one row at a time
        const int64_t KP = padded_k(K);
        for (int64_t v = 0; v < KP; v += kVec) {
          vec acc{};
          for (int64_t oc = 0; oc < OC; ++oc) acc += splat(dy[m * OC + oc]) * load(wt + oc * KP + v);
          store(dcol + m * KP + v, acc);
        }
      }
  }
}
}  // namespace small
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
