// Inverted dropout with a Philox-4x32-10 mask (ops/philox.h): 16 counters per step give the keep
// decisions of 64 consecutive elements, so the mask depends only on (seed, offset, i), never on the
// ISA or the thread count. The backward pass is the same call applied to dy.
#include <cstdint>
#include <cstring>

#include <immintrin.h>

#include "cpu/vmath.h"
#include "fastnn.h"
#include "ops/philox.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
using vm::vf;
constexpr int64_t kBlock = 64;               // elements per 16 Philox counters
constexpr int64_t kGrain = 8 * 1024;  // serial below: ~0.6 ns/element vs a ~2.3 us fork/join
typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef uint64_t u64x16 __attribute__((vector_size(128)));

// Philox-4x32-10 on 16 counters at once (the vector form of philox::philox4x32_10).
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
// ---- inner-loop intrinsics: 32x32->64 products as even/odd vpmuludq (GCC widens to 64-bit lanes
// otherwise: vpmullq on AVX-512, a multi-instruction emulation on AVX2).
#if defined(CPU_CAPABILITY_AVX512)
using VI = __m512i;
inline VI mul_even(VI a, VI m) { return _mm512_maskz_mul_epu32(0xFF, a, m); }  // maskz: no GCC 12 warning
inline VI blend_odd(VI even, VI odd) { return _mm512_mask_blend_epi32(0xAAAA, even, odd); }
inline VI mullo(VI a, VI m) { return _mm512_mullo_epi32(a, m); }
inline VI xor3(VI a, VI b, VI c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }
inline VI set1(uint32_t v) { return _mm512_set1_epi32(int(v)); }
#else
using VI = __m256i;
inline VI mul_even(VI a, VI m) { return _mm256_mul_epu32(a, m); }
inline VI blend_odd(VI even, VI odd) { return _mm256_blend_epi32(even, odd, 0xAA); }
inline VI mullo(VI a, VI m) { return _mm256_mullo_epi32(a, m); }
inline VI xor3(VI a, VI b, VI c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
inline VI set1(uint32_t v) { return _mm256_set1_epi32(int(v)); }
#endif
typedef uint64_t u64v __attribute__((vector_size(sizeof(VI))));
constexpr int kParts = 64 / sizeof(VI);  // registers per 16 counters

// High 32 bits of a[i] * m[i] for every 32-bit lane.
inline VI mulhi32(VI a, VI m) {
  const VI even = (VI)((u64v)mul_even(a, m) >> 32);
  const VI odd = mul_even((VI)((u64v)a >> 32), m);
  return blend_odd(even, odd);
}

inline void philox16(u32x16 c[4], uint32_t k0, uint32_t k1) {
  const VI m0 = set1(0xD2511F53u), m1 = set1(0xCD9E8D57u);
  for (int part = 0; part < kParts; ++part) {
    VI x[4];
    for (int w = 0; w < 4; ++w) std::memcpy(&x[w], reinterpret_cast<const char*>(&c[w]) + part * sizeof(VI), sizeof(VI));
    uint32_t a = k0, b = k1;
    for (int round = 0; round < 10; ++round) {
      const VI n0 = xor3(mulhi32(x[2], m1), x[1], set1(a));
      const VI n2 = xor3(mulhi32(x[0], m0), x[3], set1(b));
      x[1] = mullo(x[2], m1);
      x[3] = mullo(x[0], m0);
      x[0] = n0;
      x[2] = n2;
      a += 0x9E3779B9u;
      b += 0xBB67AE85u;
    }
    for (int w = 0; w < 4; ++w) std::memcpy(reinterpret_cast<char*>(&c[w]) + part * sizeof(VI), &x[w], sizeof(VI));
  }
}
#else
inline void philox16(u32x16 c[4], uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const u64x16 p0 = __builtin_convertvector(c[0], u64x16) * 0xD2511F53ull;
    const u64x16 p1 = __builtin_convertvector(c[2], u64x16) * 0xCD9E8D57ull;
    const u32x16 n0 = __builtin_convertvector(p1 >> 32, u32x16) ^ c[1] ^ k0;
    const u32x16 n2 = __builtin_convertvector(p0 >> 32, u32x16) ^ c[3] ^ k1;
    c[1] = __builtin_convertvector(p1, u32x16);
    c[3] = __builtin_convertvector(p0, u32x16);
    c[0] = n0;
    c[2] = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}
#endif

void dropout(float* y, const float* x, int64_t n, double rate, uint64_t seed, uint64_t offset) {
  const uint64_t thr = philox::drop_threshold(rate);  // < 2^32 since rate < 1
  const float keep_prob = float(1.0 - rate);
  // unsigned word >= thr, compared as signed on sign-flipped values (AVX2 has no unsigned compare)
  const int32_t sthr = int32_t(uint32_t(thr) ^ 0x80000000u);
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  parallel_for(0, blocks, kGrain / kBlock, [&](int64_t b0, int64_t b1) {
    u32x16 lane;
    for (int j = 0; j < 16; ++j) lane[j] = uint32_t(j);
    for (int64_t b = b0; b < b1; ++b) {
      const uint64_t c = uint64_t(b) * 16;
      u32x16 w[4] = {lane + uint32_t(c), u32x16{} + uint32_t(c >> 32), u32x16{} + uint32_t(offset),
                     u32x16{} + uint32_t(offset >> 32)};
      // NOTE: c + j never carries into the high word within a block (c is a multiple of 16).
      philox16(w, uint32_t(seed), uint32_t(seed >> 32));
      const int64_t i0 = b * kBlock;
      if (i0 + kBlock <= n) {
        for (int q = 0; q < 4; ++q)  // word q keeps elements i0 + 16q .. i0 + 16q + 15
          for (int j = 0; j < 16; j += vm::W) {
            vm::IntOf<vf> word;  // NOTE: native width: GCC scalarises selects on wider vectors
            std::memcpy(&word, reinterpret_cast<const char*>(&w[q]) + j * 4, sizeof word);
            const vf v = vm::load<vf>(x + i0 + q * 16 + j);
            vm::store(y + i0 + q * 16 + j, (word ^ INT32_MIN) >= sthr ? v / keep_prob : vf{});
          }
      } else {
        for (int64_t i = i0; i < n; ++i) {
          const int64_t r = i - i0;
          y[i] = w[r / 16][r % 16] >= thr ? x[i] / keep_prob : 0.0f;
        }
      }
    }
  });
}
}  // namespace

void fill_dropout(EltOps& t) { t.dropout = dropout; }
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
