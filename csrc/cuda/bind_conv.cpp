// Convolution and pooling on device arrays: see conv.cu. (Filled in below as kernels land.)
#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace fastnn {
namespace cuda {
void bind_conv(py::module_& m) {}
}  // namespace cuda
}  // namespace fastnn
