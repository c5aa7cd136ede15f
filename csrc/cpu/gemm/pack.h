// GEMM packing: copies blocks of op(A) and op(B), whatever their strides (transposes included),
// into the contiguous micro-panels the micro-kernel streams. Partial panels are zero-padded.
#pragma once
#include "fastnn.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace gemm_detail {

// op(A) block (m x kc), A(i,p) = a[i*rsa + p*csa] -> ceil(m/MR) panels, each kc x MR: dst[p*MR + i].
template <int MR>
inline void pack_a(const float* a, int64_t rsa, int64_t csa, int64_t m, int64_t kc, float* dst) {
  for (int64_t i0 = 0; i0 < m; i0 += MR, a += MR * rsa, dst += MR * kc) {
    const int64_t mr = m - i0 < MR ? m - i0 : MR;
    if (mr == MR && csa == 1) {  // rows are contiguous: read each row once, write a column
      for (int i = 0; i < MR; ++i) {
        const float* s = a + i * rsa;
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = s[p];
      }
    } else if (mr == MR && rsa == 1) {  // op(A) is column-major: each p is a contiguous MR run
      for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = a[p * csa + i];
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = i < mr ? a[i * rsa + p * csa] : 0.f;
    }
  }
}

// op(B) block (kc x n), B(p,j) = b[p*rsb + j*csb] -> ceil(n/NR) panels, each kc x NR: dst[p*NR + j].
template <int NR>
inline void pack_b(const float* b, int64_t rsb, int64_t csb, int64_t kc, int64_t n, float* dst) {
  for (int64_t j0 = 0; j0 < n; j0 += NR, b += NR * csb, dst += NR * kc) {
    const int64_t nr = n - j0 < NR ? n - j0 : NR;
    if (nr == NR && csb == 1) {  // rows of op(B) are contiguous
      for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 64
        for (int j = 0; j < NR; ++j) dst[p * NR + j] = b[p * rsb + j];
    } else if (nr == NR && rsb == 1) {  // op(B) is column-major: read each column once
      for (int j = 0; j < NR; ++j) {
        const float* s = b + j * csb;
        for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = s[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) dst[p * NR + j] = j < nr ? b[p * rsb + j * csb] : 0.f;
    }
  }
}

}  // namespace gemm_detail
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
