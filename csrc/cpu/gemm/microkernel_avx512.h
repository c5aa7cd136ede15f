// AVX-512 vector ops for the GEMM micro-kernel (intrinsics live only here and in the other
// microkernel_<isa>.h files). Register budget: 32 zmm.
#pragma once
#include <immintrin.h>

namespace fastnn {
namespace CPU_CAPABILITY {
namespace gemm_detail {

struct Vec {
  using T = __m512;
  static constexpr int W = 16;
  static inline T zero() { return _mm512_setzero_ps(); }
  static inline T set1(float x) { return _mm512_set1_ps(x); }
  static inline T bcast(const float* p) { return _mm512_set1_ps(*p); }
  static inline T load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  // First n lanes (0 < n < W); the other lanes are neither read nor written.
  static inline __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static inline T load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static inline void store_n(float* p, T v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static inline T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static inline T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static inline T add(T a, T b) { return _mm512_add_ps(a, b); }
  static inline T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  // NOTE: max_ps returns its second operand when either is NaN: max(0, v) keeps NaN as NaN (like ref).
  // (The maskz form only avoids a GCC 12 false -Wmaybe-uninitialized in _mm512_max_ps.)
  static inline T relu(T v) { return _mm512_maskz_max_ps(__mmask16(0xffff), _mm512_setzero_ps(), v); }
};

// Register tiles (MR rows x NV vectors), measured on the training shapes and squares 64..1024:
// main 8x32 (16 accumulators; 8 divides the usual batch sizes, and beat 12x32 by 3-15%),
// narrow 16x16 for N <= 16 (beat 12x16 and 24x16), and an alternative 12x32 (kAltMR rows) for the
// C^T path (N <= 12) and for M that it pads less than 8 rows do (M = 9, 20, ...).
constexpr int kMainMR = 8, kMainNV = 2;
constexpr int kNarrowMR = 16, kNarrowNV = 1;
constexpr int kAltMR = 12;
constexpr int kSmallNV = 4;  // tiles of 1, 2 or 4 rows (M <= kMainMR / 2): up to 4 x kSmallNV accumulators

}  // namespace gemm_detail
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
