// The GEMM register-tile micro-kernel and its fused store (the epilogue), written once over the
// ISA's vector ops (Vec, from microkernel_<isa>.h) so every ISA shares one loop nest.
#pragma once
#include "fastnn.h"

#if defined(CPU_CAPABILITY_AVX512)
#include "cpu/gemm/microkernel_avx512.h"
#elif defined(CPU_CAPABILITY_AVX2)
#include "cpu/gemm/microkernel_avx2.h"
#else
#include "cpu/gemm/microkernel_generic.h"
#endif

namespace fastnn {
namespace CPU_CAPABILITY {
namespace gemm_detail {

// What the store of a C tile does: c = alpha*acc + beta*c (beta == 0: c is not read), then
// + bias[j] when bias != nullptr, then relu when act == kActRelu.
struct Epilogue {
  float alpha, beta;
  int act;
};

inline float epilogue_scalar(float x, const float* c, const float* bias, const Epilogue& e) {
  if (e.beta != 0.f) x += e.beta * *c;
  if (bias) x += *bias;
  if (e.act == kActRelu && !(x > 0.f) && x == x) x = 0.f;  // relu keeps NaN as NaN
  return x;
}

// Stores the MR x NR tile acc (NR = NV*W) into C through the epilogue. Only the m x n corner is
// stored. kTransC false: tile (i,j) is C[i*ldc + j], bias is per tile column (bias[j]).
// kTransC true: the driver computes C^T, so tile (i,j) is C[j*ldc + i] and bias is per tile row;
// the tile goes through a stack buffer and is written row by row of C (scalar epilogue).
template <int MR, int NV, bool kTransC>
inline void store_tile(typename Vec::T (&acc)[MR][NV], float* c, int64_t ldc, int m, int n, const float* bias,
                       const Epilogue& e) {
  constexpr int W = Vec::W;
  const typename Vec::T alpha = Vec::set1(e.alpha);
  if (kTransC) {
    // beta == 0 (C write-only): the whole epilogue runs on the vectors, the transpose is a copy.
    const bool vec_epi = e.beta == 0.f;
    alignas(64) float t[MR][NV * W];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const typename Vec::T bi = vec_epi && bias && i < m ? Vec::set1(bias[i]) : Vec::zero();
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        typename Vec::T x = Vec::mul(acc[i][v], alpha);
        if (vec_epi) {
          if (bias) x = Vec::add(x, bi);
          if (e.act == kActRelu) x = Vec::relu(x);
        }
        Vec::store(&t[i][v * W], x);
      }
    }
    for (int j = 0; j < n; ++j, c += ldc)
      for (int i = 0; i < m; ++i) c[i] = vec_epi ? t[i][j] : epilogue_scalar(t[i][j], c + i, bias ? bias + i : nullptr, e);
    return;
  }
  const typename Vec::T beta = Vec::set1(e.beta);
  typename Vec::T bv[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v)
    bv[v] = !bias || n <= v * W ? Vec::zero()
            : n >= (v + 1) * W  ? Vec::load(bias + v * W)
                                : Vec::load_n(bias + v * W, n - v * W);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    float* ci = c + i * ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const int j = v * W;
      if (j >= n) break;
      const bool whole = n - j >= W;
      typename Vec::T x = Vec::mul(acc[i][v], alpha);
      if (e.beta != 0.f) x = Vec::fma(beta, whole ? Vec::load(ci + j) : Vec::load_n(ci + j, n - j), x);
      if (bias) x = Vec::add(x, bv[v]);
      if (e.act == kActRelu) x = Vec::relu(x);
      if (whole) Vec::store(ci + j, x);
      else Vec::store_n(ci + j, x, n - j);
    }
  }
}

// C tile (m x n, m <= MR, n <= NR) = epilogue(sum_p a(i,p) * b(p,j)) over p < kc, where
//   a(i,p) = a[p*sa + i]  (kRowA false: a packed MR-row micro-panel, sa = MR, or a column-major op(A))
//   a(i,p) = a[i*sa + p]  (kRowA true: MR rows of a row-major op(A) read in place)
//   b(p,j) = b[p*sb + j]  (a packed NR-column micro-panel, sb = NR, or a row-major op(B) in place).
// kTransC: the tile is of C^T (see store_tile). All MR rows and NR columns are read (packing pads
// partial panels with zeros); the p order is fixed, so the result does not depend on the thread count.
template <int MR, int NV, bool kRowA, bool kTransC>
inline void microkernel(int64_t kc, const float* a, int64_t sa, const float* b, int64_t sb, float* c, int64_t ldc,
                        int m, int n, const float* bias, const Epilogue& e) {
  constexpr int W = Vec::W;
  const int64_t ai_step = kRowA ? sa : 1, ap_step = kRowA ? 1 : sa;
  typename Vec::T acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = Vec::zero();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    typename Vec::T bp[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bp[v] = Vec::load(b + v * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const typename Vec::T ai = Vec::bcast(a + i * ai_step);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = Vec::fma(ai, bp[v], acc[i][v]);
    }
    a += ap_step;
    b += sb;
  }
  store_tile<MR, NV, kTransC>(acc, c, ldc, m, n, bias, e);
}

}  // namespace gemm_detail
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
