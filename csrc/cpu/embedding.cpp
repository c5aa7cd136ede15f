// Embedding: row gather, and the gradient's scatter-add made deterministic by ownership: each thread
// owns a range of vocabulary rows and scans all ids in order, adding only into its own rows, so every
// row sums its contributions in the order of the ids whatever the thread count.
#include <algorithm>
#include <cstring>

#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
constexpr int64_t kGatherGrain = 1 << 16;  // floats copied per thread below which one thread runs

void embedding_forward(float* out, const float* table, const int64_t* ids, int64_t N, int64_t V, int64_t D) {
  parallel_for(0, N, std::max<int64_t>(1, kGatherGrain / std::max<int64_t>(D, 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) std::memcpy(out + i * D, table + ids[i] * D, size_t(D) * sizeof(float));
  });
}

void embedding_backward(float* dtable, const float* dout, const int64_t* ids, int64_t N, int64_t V, int64_t D) {
  // grain in vocabulary rows: a thread's share is worth its O(N) scan of the ids
  const int64_t grain = std::max<int64_t>(1, kGatherGrain / std::max<int64_t>(D, 1));
  parallel_for(0, V, grain, [&](int64_t v0, int64_t v1) {
    std::memset(dtable + v0 * D, 0, size_t((v1 - v0) * D) * sizeof(float));
    for (int64_t i = 0; i < N; ++i) {
      const int64_t v = ids[i];
      if (v < v0 || v >= v1) continue;
      float* d = dtable + v * D;
      const float* g = dout + i * D;
#pragma omp simd
      for (int64_t k = 0; k < D; ++k) d[k] += g[k];
    }
  });
}
}  // namespace

void fill_embedding(RnnOps& t) {
  t.embedding_forward = embedding_forward;
  t.embedding_backward = embedding_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
