// Vectorised float32 math for the elementwise kernels: exp, expm1, log, log1p, tanh, sigmoid and
// the normal CDF (erf/erfc, for gelu), written once with GCC/Clang vector extensions so every ISA
// gets full-width code from the same source (AVX-512: 16 lanes, AVX2: 8, DEFAULT/SSE2: 4). The
// functions are templates over the vector type, so the same code also runs one lane at a time.
//
// Accuracy (tests/test_activation.py): a few ulp over the whole float range, Cephes-style
// polynomials (S. Moshier's single-precision Cephes library) with range reduction; saturation is
// explicit: exp underflows to (correctly rounded) subnormals then 0 and overflows to inf, tanh and
// sigmoid reach exactly +-1 / 0 / 1 and never produce NaN for finite input. NaN propagates.
// NOTE: never compile this with -ffast-math (the NaN/inf selects and the 1.5*2^23 rounding trick
// rely on IEEE semantics).
#pragma once
#include <cstdint>
#include <cstring>

#include <immintrin.h>

#ifndef CPU_CAPABILITY
#error "vmath.h is for csrc/cpu code compiled per ISA"
#endif

namespace fastnn {
namespace CPU_CAPABILITY {
namespace vm {

#if defined(CPU_CAPABILITY_AVX512)
constexpr int W = 16;
#elif defined(CPU_CAPABILITY_AVX2)
constexpr int W = 8;
#else
constexpr int W = 4;
#endif

template <int N>
struct VecT {
  typedef float f __attribute__((vector_size(N * 4)));
};
using vf = VecT<W>::f;   // one register
using v1 = VecT<1>::f;   // one lane: tails and scalar columns run the same templates
template <class V>
using IntOf = decltype(V{} < V{});  // the int32 vector of the same shape (comparison masks)

template <class V>
static inline V splat(float c) { return V{} + c; }  // NOTE: splat(-0.0f) is +0
template <class V>
static inline V load(const float* p) { V v; std::memcpy(&v, p, sizeof v); return v; }
template <class V>
static inline void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }
template <class V>
static inline V vabs(V x) { using VI = IntOf<V>; return (V)((VI)x & 0x7fffffff); }
template <class V>
static inline V vmax(V a, V b) { return a > b ? a : b; }
template <class V>
static inline V vmin(V a, V b) { return a < b ? a : b; }
// Horizontal reductions (lane order fixed, so results do not depend on threads).
template <class V>
static inline float hmax(V v) {
  float m = v[0];
  for (int i = 1; i < int(sizeof(V) / 4); ++i) m = v[i] > m ? v[i] : m;
  return m;
}
template <class V>
static inline float hsum(V v) {
  float s = v[0];
  for (int i = 1; i < int(sizeof(V) / 4); ++i) s += v[i];
  return s;
}

// ---- inner-loop intrinsics: non-temporal (streaming) stores, p 64-byte aligned -----------------
static inline void store_stream(float* p, vf v) {
#if defined(CPU_CAPABILITY_AVX512)
  _mm512_stream_ps(p, (__m512)v);
#elif defined(CPU_CAPABILITY_AVX2)
  _mm256_stream_ps(p, (__m256)v);
#else
  _mm_stream_ps(p, (__m128)v);
#endif
}
static inline void stream_fence() { _mm_sfence(); }

// e^x. |rel err| ~1 ulp. x < -103.97 -> 0, subnormal results rounded once, x > 88.72 -> inf.
template <class V>
static inline V exp(V x) {
  using VI = IntOf<V>;
  x = x < -104.0f ? splat<V>(-104.0f) : x;  // NOTE: written as selects so NaN passes through
  x = x > 89.0f ? splat<V>(89.0f) : x;
  const V t = x * 1.44269504088896341f + 12582912.0f;  // 1.5*2^23: rounds x*log2(e) to an integer
  const V n = t - 12582912.0f;
  const VI ni = (VI)t - (VI)splat<V>(12582912.0f);
  V r = x - n * 0.693359375f;  // ln2 split in two (Cody-Waite): r in [-ln2/2, ln2/2]
  r = r - n * -2.12194440e-4f;
  V p = splat<V>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n in two factors (n in [-150, 128]) so subnormal results are rounded only by the last product.
  const VI n1 = ni >> 1, n2 = ni - n1;
  return p * (V)((n1 + 127) << 23) * (V)((n2 + 127) << 23);
}

// e^x - 1 without cancellation near 0 (Kahan's trick: (u-1) * x / log(u)).
template <class V> static inline V log(V x);
template <class V>
static inline V expm1(V x) {
  const V u = exp(x), um1 = u - 1.0f;
  V r = um1 * x / log(u);
  r = u == 1.0f ? x : r;
  r = x < -20.0f ? um1 : r;  // u - 1 rounds to -1 (and log(u) may be -inf)
  return x > 88.0f ? u : r;  // inf / inf
}

// Natural log. x = m*2^e with m in [sqrt(1/2), sqrt(2)); subnormals rescaled; log(0) = -inf,
// log(x<0) = NaN, log(inf) = inf.
template <class V>
static inline V log(V x) {
  using VI = IntOf<V>;
  const VI sub = x < 1.17549435e-38f;
  const V xs = sub ? x * 8388608.0f : x;  // 2^23
  const VI bits = (VI)xs;
  VI e = ((bits >> 23) & 0xff) - 126;
  e = sub ? e - 23 : e;
  V m = (V)((bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const VI lt = m < 0.707106781186547524f;     // -1 where true
  const V ef = __builtin_convertvector(e + lt, V);
  m = lt ? m + m - 1.0f : m - 1.0f;
  const V z = m * m;
  V p = splat<V>(7.0376836292e-2f);
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  V y = p * m * z;
  y = y + ef * -2.12194440e-4f;
  y = y - 0.5f * z;
  V r = m + y;
  r = r + ef * 0.693359375f;
  r = x == 0.0f ? splat<V>(-__builtin_inff()) : r;
  r = x < 0.0f ? splat<V>(__builtin_nanf("")) : r;
  r = x == __builtin_inff() ? x : r;
  return x != x ? x : r;
}

// log(1 + u) for u >= 0 without losing small u (Goldberg: log(w) * u / (w - 1), w = 1 + u).
template <class V>
static inline V log1p(V u) {
  const V w = u + 1.0f;
  const V r = log(w) * u / (w - 1.0f);
  return w == 1.0f ? u : r;
}

// tanh: odd polynomial below |x| = 0.625, else sign(x) * (1 - 2/(e^{2|x|} + 1)) (-> +-1 exactly).
template <class V>
static inline V tanh(V x) {
  using VI = IntOf<V>;
  const V a = vabs(x), z = x * x;
  V p = splat<V>(-5.70498872745e-3f);
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  p = p * z * x + x;
  const V e = exp(a + a);
  V q = 1.0f - 2.0f / (e + 1.0f);
  q = (V)((VI)q | ((VI)x & INT32_MIN));  // copysign(q, x)
  return a < 0.625f ? p : q;
}

// 1 / (1 + e^-x) from e = e^-|x| (so no overflow and full relative accuracy for x << 0).
template <class V>
static inline V sigmoid(V x) {
  const V e = exp(-vabs(x));
  const V r = 1.0f / (1.0f + e);
  return x < 0.0f ? e * r : r;
}

// a*b - p exactly (p = a*b rounded): the error term of a product.
template <class V>
static inline V prod_err(V a, V b, V p) {
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
  if constexpr (sizeof(V) == 64) {
#if defined(CPU_CAPABILITY_AVX512)
    return (V)_mm512_fmsub_ps((__m512)a, (__m512)b, (__m512)p);
#endif
  } else if constexpr (sizeof(V) == 32) {
    return (V)_mm256_fmsub_ps((__m256)a, (__m256)b, (__m256)p);
  } else {
    V r;
    for (int i = 0; i < int(sizeof(V) / 4); ++i) r[i] = __builtin_fmaf(a[i], b[i], -p[i]);
    return r;
  }
#else  // no FMA: Dekker's exact product with Veltkamp's 12-bit split
  const V ca = a * 4097.0f, cb = b * 4097.0f;
  const V ah = ca - (ca - a), al = a - ah, bh = cb - (cb - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}

// e^{-x^2/2} with x^2 carried as an exact sum hi + lo: for |x| up to 14 rounding x^2 would cost
// up to x^2/2 ulp of relative accuracy.
template <class V>
static inline V exp_neg_half_sq(V x) {
  const V xx = x * x;
  const V r = exp(-0.5f * xx) * (1.0f - 0.5f * prod_err(x, x, xx));
  return xx < 300.0f ? r : V{};  // exp underflowed to 0 already; keeps inf * 0 out for |x| > 1.8e19
}

// Standard normal CDF Phi(x) = erfc(-x/sqrt(2))/2: erf polynomial for |z| < 1, Cephes erfc
// (e^{-z^2}/|z| * P(1/z^2)) beyond, taken on the side that does not cancel (so gelu(x) for x << 0
// keeps its relative accuracy). Phi(x < -14) = 0, Phi(x > 6) = 1.
template <class V>
static inline V normal_cdf(V x) {
  const V z = x * 0.70710678118654752f, a = vabs(z), zz = z * z;
  V s = splat<V>(7.853861353153693e-5f);
  s = s * zz - 8.010193625184903e-4f;
  s = s * zz + 5.188327685732524e-3f;
  s = s * zz - 2.685381193529856e-2f;
  s = s * zz + 1.128358514861418e-1f;
  s = s * zz - 3.761262582423300e-1f;
  s = s * zz + 1.128379165726710e+0f;
  const V small = 0.5f + 0.5f * (s * z);
  const V q = 1.0f / a, y = q * q;
  V p = splat<V>(2.326819970068386e-2f);  // 1 <= |z| < 2
  p = p * y - 1.387039388740657e-1f;
  p = p * y + 3.687424674597105e-1f;
  p = p * y - 5.824733027278666e-1f;
  p = p * y + 6.210004621745983e-1f;
  p = p * y - 4.944515323274145e-1f;
  p = p * y + 3.404879937665872e-1f;
  p = p * y - 2.741127028184656e-1f;
  p = p * y + 5.638259427386472e-1f;
  V r = splat<V>(-1.047766399936249e+1f);  // |z| >= 2
  r = r * y + 1.297719955372516e+1f;
  r = r * y - 7.495518717768503e+0f;
  r = r * y + 2.921019019210786e+0f;
  r = r * y - 1.015265279202700e+0f;
  r = r * y + 4.218463358204948e-1f;
  r = r * y - 2.820767439740514e-1f;
  r = r * y + 5.641895067754075e-1f;
  const V half_erfc = 0.5f * exp_neg_half_sq(x) * q * (a < 2.0f ? p : r);
  const V big = z < 0.0f ? half_erfc : 1.0f - half_erfc;
  return a < 1.0f ? small : big;
}

}  // namespace vm
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
