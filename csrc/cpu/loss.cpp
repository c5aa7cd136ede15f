// Probability-input cross-entropy and the pointwise losses (MSE, MAE, binary cross-entropy): the
// ISA tables reuse the reference kernels (ref/loss_ref.cpp). They see (batch, outputs) sized data
// once per training step, where a parallel SIMD version would not be measurable. The hot fused
// softmax cross-entropy is in softmax.cpp.
#include "fastnn.h"
#include "ref/eltwise_ref.h"

namespace fastnn {
namespace CPU_CAPABILITY {
void fill_loss(EltOps& t) {
  t.prob_xent_forward = ref::prob_xent_forward;
  t.prob_xent_backward = ref::prob_xent_backward;
  t.point_loss_forward = ref::point_loss_forward;
  t.point_loss_backward = ref::point_loss_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
