// fastnn._cuda: the CUDA kernel table as a Python module. It exposes the CPU table's op names with the same
// arguments on device arrays (fastnn._cuda.Array), so backend.of(array) can return it for a device array.
// Importing it never touches the GPU: without a driver device_count() is 0 and nothing else runs.
#include "cuda/runtime.h"

PYBIND11_MODULE(_cuda, m) {
  namespace c = fastnn::cuda;
  m.doc() = "fastnn's CUDA kernels on device arrays (the same op names and arguments as fastnn._C.cpu).";
  c::bind_array(m);
  c::bind_elt(m);
  c::bind_optim(m);
  c::bind_gemm(m);
  c::bind_conv(m);
  c::bind_graph(m);
}
