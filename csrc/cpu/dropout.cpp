// Inverted dropout with a Philox-4x32-10 mask (ops/philox.h): 16 counters per step give the keep
// decisions of 64 consecutive elements, so the mask depends only on (seed, offset, i), never on the
// ISA or the thread count. The backward pass is the same call applied to dy.
#include <cstdint>
#include <cstring>

#include "cpu/vmath.h"
#include "fastnn.h"
#include "ops/philox.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
constexpr int64_t kBlock = 64;               // elements per 16 Philox counters
constexpr int64_t kGrain = 32 * 1024;        // elements per task below which dropout stays serial
typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef uint64_t u64x16 __attribute__((vector_size(128)));
typedef float f32x16 __attribute__((vector_size(64)));

// Philox-4x32-10 on 16 counters at once (the vector form of philox::philox4x32_10).
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

void dropout(float* y, const float* x, int64_t n, double rate, uint64_t seed, uint64_t offset) {
  const uint64_t thr = philox::drop_threshold(rate);  // < 2^32 since rate < 1
  const float keep_prob = float(1.0 - rate);
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
        for (int q = 0; q < 4; ++q) {  // word q keeps elements i0 + 16q .. i0 + 16q + 15
          f32x16 v;
          std::memcpy(&v, x + i0 + q * 16, sizeof v);
          v = w[q] >= uint32_t(thr) ? v / keep_prob : f32x16{};
          std::memcpy(y + i0 + q * 16, &v, sizeof v);
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
