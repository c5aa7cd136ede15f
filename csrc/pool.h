// fastnn's own thread pool for the kernels' parallel regions (issue #19). Compiled once (not per ISA).
//
// Why not an OpenMP team: an OpenMP region ends when every thread of the team has arrived at its closing
// barrier. When another process keeps a core busy, a helper woken into a 20 us region may not run for a
// scheduler slice (milliseconds), and the caller, having done all the work itself, still waits for it: the
// 2-thread MLP b32 training step took 0.62 ms with one core busy against 0.23 ms on one thread. Here a region
// ends when its chunks are done: a helper that arrives late finds nothing left and goes back to waiting. The
// caller is thread 0 of the team and works too.
//
// Chunks: run(team, chunks, job, ctx) calls job(ctx, c) once for every c in [0, chunks). Thread t of the team
// owns the run [chunks*t/team, chunks*(t+1)/team) and takes its own chunks first (the data its previous chunks
// touched), then the chunks other owners have not started. Which thread runs a chunk never changes a result
// when each chunk writes its own outputs (the determinism rule in parallel.h).
#pragma once
#include <cstdint>

namespace fastnn {
namespace pool {

using Job = void (*)(const void* ctx, int64_t chunk);

// Runs every chunk on up to `team` threads (the caller and team-1 pool threads) and returns when all are done.
// Serial (in the calling thread, chunks in order) when team <= 1, inside a region (never nested), or while
// another thread of the process runs a region. An exception thrown by a chunk is rethrown here (the first one;
// the other chunks still run). chunks < 2**31.
void run(int team, int64_t chunks, Job job, const void* ctx);

// run() for a callable: f(c) for every chunk c. (Safe in csrc/cpu's per-ISA code: F is the caller's own type,
// so each ISA's instantiation is a symbol of its own.)
template <class F>
void run_chunks(int team, int64_t chunks, const F& f) {
  run(team, chunks, [](const void* ctx, int64_t c) { (*static_cast<const F*>(ctx))(c); }, &f);
}

// Threads a kernel may use here: 1 inside a pool or OpenMP region, else the OpenMP setting
// (fastnn.set_num_threads, threadpoolctl, OMP_NUM_THREADS).
int max_threads();

}  // namespace pool
}  // namespace fastnn
