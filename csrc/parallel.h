// Threading helpers for ISA code (csrc/cpu). Included only where CPU_CAPABILITY is defined, so every
// instantiation stays in that ISA's namespace (see the ODR note in fastnn.h).
//
// Determinism rule: an output element is computed by exactly one thread, in an order that does not
// depend on the thread count; reductions split work into fixed-size chunks (not per-thread chunks)
// and add the partials in chunk order. Then 1 and N threads give bit-identical results.
#pragma once
#include <omp.h>

#include <algorithm>

#include "fastnn.h"

#ifndef CPU_CAPABILITY
#error "parallel.h is for csrc/cpu code compiled per ISA"
#endif

namespace fastnn {
namespace CPU_CAPABILITY {

// Calls f(b, e) on disjoint sub-ranges covering [begin, end). Runs serially (one call) when the range
// is at most `grain` items, when already inside a parallel region (never nested), or with 1 thread.
// `grain` is the measured break-even work size of the caller, in its own units.
template <class F>
inline void parallel_for(index_t begin, index_t end, index_t grain, const F& f) {
  const index_t n = end - begin;
  if (n <= 0) return;
  const int max_t = omp_get_max_threads();
  if (n <= grain || max_t == 1 || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  const int nt = static_cast<int>(std::min<index_t>(max_t, (n + grain - 1) / std::max<index_t>(grain, 1)));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    const index_t b = begin + n * t / T, e = begin + n * (t + 1) / T;
    if (b < e) f(b, e);
  }
}

}  // namespace CPU_CAPABILITY
}  // namespace fastnn
