// The reference backend's KernelTable: naive kernels, the oracle for every test.
#include "fastnn.h"

namespace fastnn {
namespace ref {
KernelTable make_table() {
  KernelTable t{};
  t.name = "ref";
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
}  // namespace ref
}  // namespace fastnn
