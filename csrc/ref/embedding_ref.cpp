// Reference Embedding: row gather, and its gradient as a plain scatter-add in the order of the ids.
#include <cstring>

#include "fastnn.h"

namespace fastnn {
namespace ref {
void embedding_forward(float* out, const float* table, const int64_t* ids, int64_t N, int64_t V, int64_t D) {
  for (int64_t i = 0; i < N; ++i) std::memcpy(out + i * D, table + ids[i] * D, size_t(D) * sizeof(float));
}

void embedding_backward(float* dtable, const float* dout, const int64_t* ids, int64_t N, int64_t V, int64_t D) {
  std::memset(dtable, 0, size_t(V * D) * sizeof(float));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t d = 0; d < D; ++d) dtable[ids[i] * D + d] += dout[i * D + d];
}

void fill_embedding(RnnOps& t) {
  t.embedding_forward = embedding_forward;
  t.embedding_backward = embedding_backward;
}
}  // namespace ref
}  // namespace fastnn
