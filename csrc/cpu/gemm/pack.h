// GEMM packing: copies blocks of op(A) and op(B), whatever their strides (transposes included),
// into the contiguous micro-panels the micro-kernel streams. Partial panels are zero-padded.
// Portable C++ (GCC/Clang vector extensions), recompiled per ISA.
#pragma once
#include <cstring>

#include "fastnn.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace gemm_detail {

typedef float v4f __attribute__((vector_size(16)));

inline v4f load4(const float* p) { v4f v; std::memcpy(&v, p, sizeof v); return v; }
inline void store4(float* p, v4f v) { std::memcpy(p, &v, sizeof v); }

// dst[p*ld + r] = src[r*ss + p] for r < R, p < kc: R source rows, each contiguous in p, become
// columns of dst; 4x4 blocks are transposed in registers.
inline void pack_transpose(const float* src, int64_t ss, int R, int64_t kc, float* dst, int64_t ld) {
  int r = 0;
  for (; r + 4 <= R; r += 4) {
    const float *s0 = src + r * ss, *s1 = s0 + ss, *s2 = s1 + ss, *s3 = s2 + ss;
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4) {
      const v4f x0 = load4(s0 + p), x1 = load4(s1 + p), x2 = load4(s2 + p), x3 = load4(s3 + p);
      const v4f t0 = __builtin_shufflevector(x0, x1, 0, 4, 1, 5), t1 = __builtin_shufflevector(x0, x1, 2, 6, 3, 7);
      const v4f t2 = __builtin_shufflevector(x2, x3, 0, 4, 1, 5), t3 = __builtin_shufflevector(x2, x3, 2, 6, 3, 7);
      float* d = dst + p * ld + r;
      store4(d, __builtin_shufflevector(t0, t2, 0, 1, 4, 5));
      store4(d + ld, __builtin_shufflevector(t0, t2, 2, 3, 6, 7));
      store4(d + 2 * ld, __builtin_shufflevector(t1, t3, 0, 1, 4, 5));
      store4(d + 3 * ld, __builtin_shufflevector(t1, t3, 2, 3, 6, 7));
    }
    for (; p < kc; ++p) {
      float* d = dst + p * ld + r;
      d[0] = s0[p]; d[1] = s1[p]; d[2] = s2[p]; d[3] = s3[p];
    }
  }
  for (; r < R; ++r)
    for (int64_t p = 0; p < kc; ++p) dst[p * ld + r] = src[r * ss + p];
}

// One micro-panel of the (rows x kc) matrix X(r,p) = x[r*rs + p*cs], r < rows <= R:
// dst[p*R + r], rows >= `rows` zero. Used for A (R = MR) and, transposed, for B (R = NR).
template <int R>
inline void pack_panel(const float* x, int64_t rs, int64_t cs, int64_t rows, int64_t kc, float* dst) {
  if (cs == 1) {  // rows contiguous in p: transpose
    pack_transpose(x, rs, int(rows), kc, dst, R);
  } else if (rs == 1) {  // each p is a contiguous run of `rows` (a whole panel: a fixed-size copy, inlined)
    if (rows == R)
      for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * R, x + p * cs, R * sizeof(float));
    else
      for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * R, x + p * cs, size_t(rows) * sizeof(float));
  } else {
    for (int64_t p = 0; p < kc; ++p)
      for (int r = 0; r < rows; ++r) dst[p * R + r] = x[r * rs + p * cs];
  }
  if (rows < R)
    for (int64_t p = 0; p < kc; ++p) std::memset(dst + p * R + rows, 0, size_t(R - rows) * sizeof(float));
}

// op(A) rows (m x kc), A(i,p) = a[i*rsa + p*csa] -> ceil(m/MR) panels of kc x MR: dst[p*MR + i].
template <int MR>
inline void pack_a(const float* a, int64_t rsa, int64_t csa, int64_t m, int64_t kc, float* dst) {
  for (int64_t i0 = 0; i0 < m; i0 += MR, a += MR * rsa, dst += MR * kc)
    pack_panel<MR>(a, rsa, csa, m - i0 < MR ? m - i0 : MR, kc, dst);
}

// One panel of op(B) columns (kc x n, n <= NR), B(p,j) = b[p*rsb + j*csb] -> dst[p*NR + j].
template <int NR>
inline void pack_b(const float* b, int64_t rsb, int64_t csb, int64_t kc, int64_t n, float* dst) {
  pack_panel<NR>(b, csb, rsb, n, kc, dst);
}

}  // namespace gemm_detail
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
