// This ISA's KernelTable: the single registration point (compiled once per ISA, see CMakeLists.txt).
#include "fastnn.h"

namespace fastnn {
namespace CPU_CAPABILITY {
#if defined(CPU_CAPABILITY_AVX512)
static const char* const kName = "avx512";
#elif defined(CPU_CAPABILITY_AVX2)
static const char* const kName = "avx2";
#else
static const char* const kName = "default";
#endif

KernelTable make_table() {
  KernelTable t{};
  t.name = kName;
  fill_gemm(t.gemm);
  fill_conv(t.conv);
  fill_pool(t.conv);
  fill_unary(t.elt);
  fill_softmax(t.elt);
  fill_loss(t.elt);
  fill_dropout(t.elt);
  fill_optim(t.optim);
  fill_rnn(t.rnn);
  fill_embedding(t.rnn);
  fill_resample(t.image);
  fill_depthwise(t.vision);
  fill_batchnorm(t.vision);
  fill_layernorm(t.vision);
  return t;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
