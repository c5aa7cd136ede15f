#include "resolve/resolve.h"

namespace fastnn {
void check_optim_step(int64_t step, const std::string& name) {
  FASTNN_CHECK(step >= 1, name + ": step must be >= 1 (Keras iterations + 1), got " + std::to_string(step));
}

void check_momentum_slot(double momentum, bool has_slot, const std::string& name) {
  FASTNN_CHECK(momentum == 0.0 || has_slot, name + ": momentum > 0 needs the momentums slot");
}

void check_centered_slot(bool centered, bool has_slot) {
  FASTNN_CHECK(!centered || has_slot, "rmsprop_update: centered needs the average_grads slot");
}
}  // namespace fastnn
