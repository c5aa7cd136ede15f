// Caching device allocator: sizes are rounded up (512 B granules below 1 MiB, 2 MiB above) and freed
// blocks wait in a per-device free list keyed by that size, so steady-state training allocates nothing.
// Thread-safe (one mutex; kernels release the GIL, allocation does not).
#include <map>
#include <mutex>
#include <vector>

#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace fastnn {
namespace cuda {
using FreeLists = std::map<std::pair<int, size_t>, std::vector<void*>>;  // (device, rounded bytes) -> blocks

// A graph's private free lists (see runtime.h): on destruction its blocks join the shared cache.
struct Pool {
  FreeLists free;
  ~Pool();
};

namespace {
std::mutex mu;
FreeLists free_lists;
int64_t live_bytes = 0, cached_bytes = 0;
std::shared_ptr<Pool> capturing;  // the pool of the capture under way

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

Pool::~Pool() {
  std::lock_guard<std::mutex> lock(mu);
  for (auto& kv : free)
    for (void* p : kv.second) free_lists[kv.first].push_back(p);
}

std::shared_ptr<Pool> new_pool() { return std::make_shared<Pool>(); }

std::shared_ptr<Pool> capture_pool() {
  std::lock_guard<std::mutex> lock(mu);
  return capturing;
}

void set_capture_pool(std::shared_ptr<Pool> pool) {
  std::shared_ptr<Pool> old;  // released after the lock: its destructor takes the lock
  std::lock_guard<std::mutex> lock(mu);
  old = std::move(capturing);
  capturing = std::move(pool);
}

void* device_alloc(int device, size_t bytes, std::shared_ptr<Pool>* pool_out) {
  const size_t r = rounded(bytes);
  std::lock_guard<std::mutex> lock(mu);
  *pool_out = capturing;
  // during a capture: the graph's own freed blocks first, then fresh memory (never the shared cache,
  // whose blocks later arrays would share with the graph's replays)
  FreeLists& lists = capturing ? capturing->free : free_lists;
  auto it = lists.find({device, r});
  if (it != lists.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    cached_bytes -= int64_t(r);
    live_bytes += int64_t(r);
    return p;
  }
  check(cudaSetDevice(device), "cudaSetDevice");
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, r);
  if (err != cudaSuccess && !capturing) {  // out of memory: give the cache back and try once more
    cudaGetLastError();
    release_cached_locked();
    cudaSetDevice(device);
    err = cudaMalloc(&p, r);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("fastnn cuda: out of device memory allocating " + std::to_string(bytes) +
                             " bytes on cuda:" + std::to_string(device) + " (" + cudaGetErrorString(err) + ")");
  }
  live_bytes += int64_t(r);
  return p;
}

void device_free(int device, void* p, size_t bytes, const std::shared_ptr<Pool>& pool) {
  if (!p) return;
  const size_t r = rounded(bytes);
  std::lock_guard<std::mutex> lock(mu);
  (pool ? pool->free : free_lists)[{device, r}].push_back(p);
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

cudaStream_t launch_stream() {
  static cudaStream_t streams[64] = {};
  static std::mutex smu;
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  std::lock_guard<std::mutex> lock(smu);
  if (!streams[device]) check(cudaStreamCreate(&streams[device]), "cudaStreamCreate");  // blocking: see kernels.h
  return streams[device];
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
