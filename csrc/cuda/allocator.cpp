// Caching device allocator: sizes are rounded up (512 B granules below 1 MiB, 2 MiB above) and freed
// blocks wait in a per-device free list keyed by that size, so steady-state training allocates nothing.
// Thread-safe (one mutex; kernels release the GIL, allocation does not).
#include <map>
#include <mutex>
#include <vector>

#include "cuda/runtime.h"

namespace fastnn {
namespace cuda {
namespace {
std::mutex mu;
std::map<std::pair<int, size_t>, std::vector<void*>> free_lists;  // (device, rounded bytes) -> blocks
int64_t live_bytes = 0, cached_bytes = 0;

size_t rounded(size_t bytes) {
  const size_t g = bytes < (size_t(1) << 20) ? 512 : (size_t(2) << 20);
  return bytes == 0 ? g : (bytes + g - 1) / g * g;
}

void release_cached_locked() {
  for (auto& kv : free_lists) {
    cudaSetDevice(kv.first.first);
    for (void* p : kv.second) cudaFree(p);
  }
  free_lists.clear();
  cached_bytes = 0;
}
}  // namespace

void* device_alloc(int device, size_t bytes) {
  const size_t r = rounded(bytes);
  std::lock_guard<std::mutex> lock(mu);
  auto it = free_lists.find({device, r});
  if (it != free_lists.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    cached_bytes -= int64_t(r);
    live_bytes += int64_t(r);
    return p;
  }
  check(cudaSetDevice(device), "cudaSetDevice");
  void* p = nullptr;
  if (cudaMalloc(&p, r) != cudaSuccess) {  // out of memory: give the cache back and try once more
    cudaGetLastError();
    release_cached_locked();
    cudaSetDevice(device);
    const cudaError_t err = cudaMalloc(&p, r);
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("fastnn cuda: out of device memory allocating " + std::to_string(bytes) +
                               " bytes on cuda:" + std::to_string(device) + " (" + cudaGetErrorString(err) + ")");
    }
  }
  live_bytes += int64_t(r);
  return p;
}

void device_free(int device, void* p, size_t bytes) {
  if (!p) return;
  const size_t r = rounded(bytes);
  std::lock_guard<std::mutex> lock(mu);
  free_lists[{device, r}].push_back(p);
  live_bytes -= int64_t(r);
  cached_bytes += int64_t(r);
}

int64_t memory_allocated() {
  std::lock_guard<std::mutex> lock(mu);
  return live_bytes;
}

int64_t memory_reserved() {
  std::lock_guard<std::mutex> lock(mu);
  return live_bytes + cached_bytes;
}

void empty_cache() {
  std::lock_guard<std::mutex> lock(mu);
  release_cached_locked();
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {  // no driver, no device, driver too old: no GPU
    cudaGetLastError();
    return 0;
  }
  return n;
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("fastnn cuda: ") + what + ": " + cudaGetErrorString(err));
  }
}
}  // namespace cuda
}  // namespace fastnn
