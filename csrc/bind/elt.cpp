// Placeholder until this group's kernels land.
#include "bind/common.h"

namespace fastnn {
void bind_elt(py::module_& m, const KernelTable* t) {}
}  // namespace fastnn
