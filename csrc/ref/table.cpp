// The reference backend's KernelTable: naive kernels, the oracle for every test.
#include "fastnn.h"

namespace fastnn {
namespace ref {
KernelTable make_table() {
  KernelTable t{};
  t.name = "ref";
  fill_gemm(t.gemm);
  fill_conv(t.conv);
  fill_elt(t.elt);
  fill_optim(t.optim);
  return t;
}
}  // namespace ref
}  // namespace fastnn
