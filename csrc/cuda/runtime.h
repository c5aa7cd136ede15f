// fastnn._cuda host side: the device array, the caching allocator and the argument checks shared by the
// binding files (plain C++, compiled by the host compiler; kernels live in the .cu files behind kernels.h).
//
// Import never needs a driver: cudart is linked statically and loads libcuda on first use, and every
// entry point that touches the device first asks device_count(), which is 0 without a driver or GPU.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/gemm.h"
#include "resolve/resolve.h"

namespace fastnn {
namespace cuda {
namespace py = pybind11;

// Raises RuntimeError naming `what` and CUDA's message when err is not cudaSuccess.
void check(cudaError_t err, const char* what);

// Caching allocator (allocator.cpp): freed blocks go to a free list keyed by their rounded size and are
// handed out again, so a training loop with stable shapes stops calling cudaMalloc after its first step.
// One list per device. NOTE: every kernel runs on the device's one stream (kernels.h launch_stream), so a
// block freed on the host can be reused at once: later kernels are ordered after the ones that used it.
//
// While a CUDA graph is being captured (graph.cpp), blocks come from and go back to that graph's Pool: the
// graph's kernels keep using their addresses on every replay, so they never return to the shared lists until
// the graph and every array made during its capture are gone.
struct Pool;
std::shared_ptr<Pool> new_pool();
std::shared_ptr<Pool> capture_pool();                   // the pool of the capture under way, or null
void set_capture_pool(std::shared_ptr<Pool> pool);
void* device_alloc(int device, size_t bytes, std::shared_ptr<Pool>* pool_out);
void device_free(int device, void* p, size_t bytes, const std::shared_ptr<Pool>& pool);
int64_t memory_allocated();  // bytes in live blocks (all devices)
int64_t memory_reserved();   // live + cached
void empty_cache();          // cudaFree every cached block
int device_count();          // 0 without a driver or GPU (never raises)

enum class DType : int { f32 = 0, i32 = 1 };
inline size_t dtype_size(DType) { return 4; }
const char* dtype_name(DType d);

// Device memory owned by one or more arrays (views share it). `foreign` holds a DLPack producer's
// capsule context instead when the memory was imported with from_dlpack.
struct Block {
  void* ptr = nullptr;
  size_t bytes = 0;
  int device = 0;
  void (*foreign_deleter)(void*) = nullptr;
  void* foreign = nullptr;
  std::shared_ptr<Pool> pool;  // set when allocated during a graph capture
  ~Block();
};

// A dense C-contiguous float32 / int32 array in GPU memory: `fastnn._cuda.Array`.
struct Array {
  std::shared_ptr<Block> block;
  int64_t offset = 0;  // elements from block->ptr
  Shape shape;
  DType dtype = DType::f32;

  int64_t size() const;
  int device() const { return block ? block->device : 0; }
  float* f32() const { return static_cast<float*>(block->ptr) + offset; }
  int32_t* i32() const { return static_cast<int32_t*>(block->ptr) + offset; }
  static Array empty(const Shape& shape, DType dt, int device);
};

// Argument conversion at the binding boundary: a device array, else a TypeError naming the argument
// (host/device mixing: numpy arrays are never copied implicitly).
Array& as_dev(const py::handle& h, const std::string& what, DType want = DType::f32);
// out= checked like the CPU bindings (exact shape, float32, on the device of `like`), or a new array.
Array out_or_new(const py::object& out, const Shape& shape, const std::string& name, const Array& like);
// Refuses an `out` that overlaps input `in` (exact_ok: the same array is allowed, for elementwise ops).
void check_disjoint(const Array& out, const Array& in, const std::string& op, const char* in_name,
                    bool exact_ok = false);
void check_same_device(const Array& a, const Array& b, const std::string& what);
// Makes `a`'s device current for the kernels that follow.
void use_device(const Array& a);

// C = ... through the selected GEMM backend (bind_gemm.cpp) on `device` (current).
void gemm_run(const GemmParams& p, int device);

void bind_array(py::module_& m);
void bind_elt(py::module_& m);
void bind_optim(py::module_& m);
void bind_gemm(py::module_& m);
void bind_conv(py::module_& m);
void bind_graph(py::module_& m);
}  // namespace cuda
}  // namespace fastnn
