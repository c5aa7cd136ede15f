// AVX2 + FMA vector ops for the GEMM micro-kernel (intrinsics live only in the microkernel_<isa>.h
// files). Register budget: 16 ymm.
#pragma once
#include <immintrin.h>

namespace fastnn {
namespace CPU_CAPABILITY {
namespace gemm_detail {

struct Vec {
  using T = __m256;
  static constexpr int W = 8;
  static inline T zero() { return _mm256_setzero_ps(); }
  static inline T set1(float x) { return _mm256_set1_ps(x); }
  static inline T bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static inline T load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  // First n lanes (0 < n < W); the other lanes are neither read nor written.
  static inline __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static inline T load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static inline void store_n(float* p, T v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static inline T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static inline T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static inline T add(T a, T b) { return _mm256_add_ps(a, b); }
  static inline T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  // NOTE: max_ps returns its second operand when either is NaN: max(0, v) keeps NaN as NaN (like ref).
  static inline T relu(T v) { return _mm256_max_ps(_mm256_setzero_ps(), v); }
};

// 6x16: 12 accumulators + 2 B vectors + 1 broadcast. Narrow tile for N <= 8: 12x8.
constexpr int kMainMR = 6, kMainNV = 2;
constexpr int kNarrowMR = 12, kNarrowNV = 1;
constexpr int kAltMR = 6;  // the C^T tile (N <= kAltMR): kAltMR x kMainNV vectors
constexpr int kSmallNV = 2;  // tiles of 1, 2 or 4 rows (M <= kMainMR / 2): up to 4 x kSmallNV accumulators

}  // namespace gemm_detail
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
