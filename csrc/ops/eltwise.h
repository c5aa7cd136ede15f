// Elementwise, softmax, loss and dropout op group. Filled in by the activation/loss issue.
#pragma once
namespace fastnn {
struct EltOps {
  int unused_;  // placeholder until the first elementwise kernel lands
};
}  // namespace fastnn
