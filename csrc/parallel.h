// Threading helpers for ISA code (csrc/cpu). Included only where CPU_CAPABILITY is defined, so every
// instantiation stays in that ISA's namespace (see the ODR note in fastnn.h).
//
// Determinism rule: an output element is computed by exactly one thread, in an order that does not
// depend on the thread count; reductions split work into fixed-size chunks (not per-thread chunks)
// and add the partials in chunk order. Then 1 and N threads give bit-identical results.
#pragma once
#include <algorithm>

#include "fastnn.h"
#include "pool.h"

#ifndef CPU_CAPABILITY
#error "parallel.h is for csrc/cpu code compiled per ISA"
#endif

namespace fastnn {
namespace CPU_CAPABILITY {

// Work is cut into up to kChunksPerThread chunks per thread (each at least `grain` items) and run on fastnn's
// pool (csrc/pool.h): thread t owns the t-th run of consecutive chunks, as a static split would give it, and runs
// its own chunks first; a thread that has finished takes the chunks another thread has not started yet. So on an
// idle machine every thread works on its static share (the same data the previous op touched: 2-thread seed CNN
// step 47.8 ms static, 50.2 ms with OpenMP's dynamic schedule, 48.6 ms owner-first), and a thread that loses its
// core (another process, numpy's BLAS threads spinning) gets its chunks taken instead of holding the team (issue
// #19: with one core busy, 109 ms static, 84 ms either dynamic form); the region ends when the chunks are done,
// not when a late thread arrives. Chunk boundaries depend on the thread count, so f must compute each item
// independently of where its range starts (the rule above).
constexpr index_t kChunksPerThread = 4;

// Threads a kernel may use (1 inside a region: never nested).
inline int max_threads() { return pool::max_threads(); }

// run_chunks(nt, chunks, f): f(c) for every chunk c in [0, chunks) on up to nt threads of the pool (pool.h).
using pool::run_chunks;

// Calls f(b, e) on disjoint sub-ranges covering [begin, end), possibly several per thread. Runs serially
// (one call) when the range is at most `grain` items, when already inside a parallel region (never
// nested), or with 1 thread. `grain` is the measured break-even work size of the caller, in its own units.
template <class F>
inline void parallel_for(index_t begin, index_t end, index_t grain, const F& f) {
  const index_t n = end - begin;
  if (n <= 0) return;
  const int max_t = max_threads();
  if (n <= grain || max_t == 1) {
    f(begin, end);
    return;
  }
  const index_t g = std::max<index_t>(grain, 1), most = (n + g - 1) / g;
  const int nt = static_cast<int>(std::min<index_t>(max_t, most));
  const index_t chunks = std::min<index_t>(nt * kChunksPerThread, most);
  run_chunks(nt, chunks, [&](index_t c) { f(begin + n * c / chunks, begin + n * (c + 1) / chunks); });
}

}  // namespace CPU_CAPABILITY
}  // namespace fastnn
