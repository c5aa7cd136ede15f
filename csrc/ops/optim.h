// Optimizer-update op group. Filled in by the activation/loss/optimizer issue.
#pragma once
namespace fastnn {
struct OptimOps {
  int unused_;  // placeholder until the first optimizer kernel lands
};
}  // namespace fastnn
