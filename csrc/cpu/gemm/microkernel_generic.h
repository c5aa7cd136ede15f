// Portable vector ops for the GEMM micro-kernel (DEFAULT build: GCC/Clang vector extensions, which
// compile to SSE2 on any x86-64 and to plain code elsewhere). No intrinsics.
#pragma once
#include <cstring>

namespace fastnn {
namespace CPU_CAPABILITY {
namespace gemm_detail {

struct Vec {
  typedef float T __attribute__((vector_size(16)));
  static constexpr int W = 4;
  static inline T zero() { return T{0.f, 0.f, 0.f, 0.f}; }
  static inline T set1(float x) { return T{x, x, x, x}; }
  static inline T bcast(const float* p) { return set1(*p); }
  static inline T load(const float* p) { T v; std::memcpy(&v, p, sizeof v); return v; }
  static inline void store(float* p, T v) { std::memcpy(p, &v, sizeof v); }
  static inline T load_n(const float* p, int n) {
    T v = zero();
    for (int i = 0; i < n; ++i) v[i] = p[i];
    return v;
  }
  static inline void store_n(float* p, T v, int n) {
    for (int i = 0; i < n; ++i) p[i] = v[i];
  }
  static inline T fma(T a, T b, T c) { return a * b + c; }
  static inline T mul(T a, T b) { return a * b; }
  static inline T add(T a, T b) { return a + b; }
  static inline T sub(T a, T b) { return a - b; }
  // Keeps NaN as NaN (like ref): !(v > 0) selects 0 only for non-NaN v.
  static inline T relu(T v) {
    for (int i = 0; i < W; ++i) v[i] = (v[i] > 0.f || v[i] != v[i]) ? v[i] : 0.f;
    return v;
  }
};

// 6x8: 12 accumulators + 2 B vectors + 1 broadcast in 16 xmm. Narrow tile for N <= 4: 12x4.
constexpr int kMainMR = 6, kMainNV = 2;
constexpr int kNarrowMR = 12, kNarrowNV = 1;
constexpr int kAltMR = 6;  // the C^T tile (N <= kAltMR): kAltMR x kMainNV vectors
constexpr int kSmallNV = 2;  // tiles of 1, 2 or 4 rows (M <= kMainMR / 2): up to 4 x kSmallNV accumulators

}  // namespace gemm_detail
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
