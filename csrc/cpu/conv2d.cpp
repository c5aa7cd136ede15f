// Placeholder until this group's kernels land.
#include "fastnn.h"

namespace fastnn {
namespace CPU_CAPABILITY {
void fill_conv(ConvOps& t) {}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
