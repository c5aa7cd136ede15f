// Placeholder until this group's kernels land.
#include "fastnn.h"

namespace fastnn {
namespace CPU_CAPABILITY {
void fill_optim(OptimOps& t) {}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
