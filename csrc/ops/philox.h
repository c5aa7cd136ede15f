// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based RNG, so element i's random word depends only on (key, counter) and not on which
// thread computes it. Shared by the reference and the ISA kernels (dropout, initializers).
// NOTE: `static` functions only (internal linkage): this header is compiled once per ISA (and by nvcc).
#pragma once
#include <cstdint>

#include "ops/hd.h"

namespace fastnn {
namespace philox {
// Four 32-bit outputs for counter (c0..c3) and key (k0, k1), written to r[0..3].
FASTNN_HD static inline void philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                                 uint32_t r[4]) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  r[0] = c0; r[1] = c1; r[2] = c2; r[3] = c3;
}

// Stream layout (dropout, shared by every backend): element i of stream (seed, offset) takes word
// (i % 64) / 16 of the Philox output for counter c = (i / 64) * 16 + i % 16, i.e. counter words
// (c low, c high, offset low, offset high) under key (seed low, seed high). So 16 consecutive
// counters give 64 consecutive elements as four runs of 16: one 16-lane vector per output word.
// Dropout keeps element i when its word is >= drop_threshold(rate) (probability 1 - rate).
static inline uint64_t drop_threshold(double rate) {
  const double t = rate * 4294967296.0;
  return t >= 4294967296.0 ? 4294967296ull : uint64_t(t);
}
}  // namespace philox
}  // namespace fastnn
