// Reference dropout: one Philox call per element (the ISA kernel shares the counter layout).
#include <cstdint>

#include "fastnn.h"
#include "ops/philox.h"

namespace fastnn {
namespace ref {
namespace {
void dropout(float* y, const float* x, int64_t n, double rate, uint64_t seed, uint64_t offset) {
  const uint64_t thr = philox::drop_threshold(rate);
  const float keep_prob = float(1.0 - rate);
  for (int64_t i = 0; i < n; ++i) {
    // Element i: counter (i / 64) * 16 + i % 16, word (i % 64) / 16 (see philox.h).
    const uint64_t c = uint64_t(i / 64) * 16 + uint64_t(i % 16);
    uint32_t r[4];
    philox::philox4x32_10(uint32_t(c), uint32_t(c >> 32), uint32_t(offset), uint32_t(offset >> 32), uint32_t(seed),
                          uint32_t(seed >> 32), r);
    y[i] = r[(i % 64) / 16] >= thr ? x[i] / keep_prob : 0.0f;
  }
}
}  // namespace

void fill_dropout(EltOps& t) { t.dropout = dropout; }
}  // namespace ref
}  // namespace fastnn
