// The thread pool of pool.h. One region at a time: the caller publishes the region (job, chunk count, team
// size and one ticket per owner) and bumps `epoch`; pool threads spin on `epoch` for a while after their last
// region, then sleep on a futex word of their own, which the caller of a region clears for its team's threads.
// A ticket packs (epoch << 32 | owner's next chunk), so a thread that wakes up after its region ended cannot
// claim a chunk of the next one: its compare-exchange sees another epoch. The caller returns when `done` reaches
// the chunk count, without waiting for threads that never arrived.
//
// Memory order of the region's fields (job, ctx, chunks, team; relaxed atomics): the caller writes them before
// the release of `epoch`; a thread reads them after acquiring `epoch`, and uses them only after claiming one of
// that epoch's chunks. A claim succeeds only while the region has unfinished chunks, and the caller writes the
// next region's fields only after every chunk finished, so what the thread read belongs to its epoch.
#include "pool.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>

namespace fastnn {
namespace pool {
namespace {

constexpr int kMaxTeam = 1024;  // threads in a team (set_num_threads allows up to max(64, 4 x cores))

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Sleeps while *word == expected (returns at once otherwise, or spuriously); wakes every sleeper on word.
void wait_on(std::atomic<uint32_t>& word, uint32_t expected) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
#else
  if (word.load() == expected) sched_yield();
#endif
}
void wake_all(std::atomic<uint32_t>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#endif
}

// Pause rounds a waiting thread spins before it sleeps (~20 ns each on Zen 4: 5,000 ~ 100 us), as libgomp's
// GOMP_SPINCOUNT counts them: FASTNN_SPIN_ROUNDS, else the user's GOMP_SPINCOUNT / OMP_WAIT_POLICY, else 5,000
// (fastnn/backend.py has the measurements behind it).
int spin_rounds_from_env() {
  auto number = [](const char* s, long fallback) {
    char* end = nullptr;
    const long v = s ? std::strtol(s, &end, 10) : -1;
    return (s && end != s && v >= 0) ? int(std::min<long>(v, INT_MAX)) : int(fallback);
  };
  if (const char* s = std::getenv("FASTNN_SPIN_ROUNDS")) return number(s, 5000);
  if (const char* s = std::getenv("GOMP_SPINCOUNT")) return number(s, 5000);
  if (const char* s = std::getenv("OMP_WAIT_POLICY")) {
    if (strcasecmp(s, "passive") == 0) return 0;
    if (strcasecmp(s, "active") == 0) return INT_MAX;
  }
  return 5000;
}

struct alignas(64) Nap {
  std::atomic<uint32_t> asleep{0};  // pool thread w is (about to be) asleep on this word: 1
};

struct alignas(64) Ticket {
  std::atomic<uint64_t> v{0};  // (epoch << 32) | the owner's next unclaimed chunk
};

struct Pool {
  alignas(64) std::atomic<uint32_t> epoch{0};  // bumped to publish a region
  // the current region
  std::atomic<Job> job{nullptr};
  std::atomic<const void*> ctx{nullptr};
  std::atomic<int64_t> chunks{0};
  std::atomic<int> team{0};
  alignas(64) std::atomic<int64_t> done{0};    // chunks finished
  alignas(64) std::atomic<uint32_t> caller_asleep{0};  // futex word of the caller
  std::atomic<bool> failed{false};
  std::exception_ptr error;  // the first chunk's exception (written by whoever set `failed`)
  Ticket tickets[kMaxTeam];
  // One word per pool thread, so that a region wakes only its team's threads (a pool once grown to 8 threads,
  // then used by teams of 2, would otherwise wake all 7 at every region)
  Nap naps[kMaxTeam];
  std::atomic<bool> busy{false};  // a caller runs a region (another caller runs its own serially)
  std::mutex grow;
  int threads = 0;  // pool threads started: ids 1..threads
  int spin_rounds = spin_rounds_from_env();
};

// Never destroyed: pool threads may still spin on it while the process exits.
Pool* the_pool = new Pool;
thread_local bool t_in_region = false;

// Runs chunk c of the region; counts it done and wakes the caller when it was the last.
void run_chunk(Pool& P, Job job, const void* ctx, int64_t c, int64_t chunks) {
  try {
    job(ctx, c);
  } catch (...) {
    if (!P.failed.exchange(true)) P.error = std::current_exception();
  }
  if (P.done.fetch_add(1, std::memory_order_seq_cst) + 1 == chunks && P.caller_asleep.load(std::memory_order_seq_cst)) {
    P.caller_asleep.store(0, std::memory_order_seq_cst);
    wake_all(P.caller_asleep);
  }
}

// Claims and runs region e's chunks: owner `first`'s run, then the others' in turn. Returns when none is left
// to claim, or at once when region e is over.
void work(Pool& P, uint32_t e, int first, Job job, const void* ctx, int64_t chunks, int team) {
  for (int v = 0; v < team; ++v) {
    const int o = (first + v) % team;
    const uint64_t end = uint64_t(chunks * (o + 1) / team);
    Ticket& k = P.tickets[o];
    uint64_t cur = k.v.load(std::memory_order_acquire);
    for (;;) {
      if (uint32_t(cur >> 32) != e) return;  // a newer region: this one is over
      if ((cur & 0xffffffffu) >= end) break;
      if (k.v.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        run_chunk(P, job, ctx, int64_t(cur & 0xffffffffu), chunks);
    }
  }
}

struct ThreadArg {
  int id;
  uint32_t seen;
};

void* thread_main(void* raw) {
  const ThreadArg a = *static_cast<ThreadArg*>(raw);
  delete static_cast<ThreadArg*>(raw);
  Pool& P = *the_pool;
  t_in_region = true;  // what a pool thread runs never opens a region of its own
  for (uint32_t seen = a.seen;;) {
    uint32_t e = P.epoch.load(std::memory_order_acquire);
    for (int i = 0; e == seen && i < P.spin_rounds; ++i) {
      cpu_relax();
      e = P.epoch.load(std::memory_order_acquire);
    }
    if (e == seen) {
      std::atomic<uint32_t>& nap = P.naps[a.id].asleep;
      for (;;) {
        nap.store(1, std::memory_order_seq_cst);
        if ((e = P.epoch.load(std::memory_order_seq_cst)) != seen) break;
        wait_on(nap, 1);  // until a region's caller sets it to 0 (or spuriously)
      }
      nap.store(0, std::memory_order_relaxed);
    }
    seen = e;
    const int team = P.team.load(std::memory_order_relaxed);
    if (a.id < team)
      work(P, e, a.id, P.job.load(std::memory_order_relaxed), P.ctx.load(std::memory_order_relaxed),
           P.chunks.load(std::memory_order_relaxed), team);
  }
  return nullptr;
}

// Starts pool threads until ids 1..n-1 exist (under P.grow); returns the team size they allow.
int grow_to(Pool& P, int n, uint32_t seen) {
  std::lock_guard<std::mutex> lock(P.grow);
  while (P.threads < n - 1) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    auto* arg = new ThreadArg{P.threads + 1, seen};
    const int rc = pthread_create(&th, &attr, thread_main, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0) {  // no more threads: a smaller team
      delete arg;
      break;
    }
    ++P.threads;
  }
  return std::min(n, P.threads + 1);
}

// A child made by fork() has none of the parent's pool threads: start a fresh pool there (the old one may be
// mid-region, its lock held).
void on_fork_child() {
  the_pool = new Pool;
  t_in_region = false;
}
const int fork_handler = pthread_atfork(nullptr, nullptr, on_fork_child);

struct RegionGuard {
  RegionGuard() { t_in_region = true; }
  ~RegionGuard() { t_in_region = false; }
};

}  // namespace

int max_threads() { return t_in_region || omp_in_parallel() ? 1 : omp_get_max_threads(); }

void run(int team, int64_t chunks, Job job, const void* ctx) {
  Pool& P = *the_pool;
  team = int(std::min<int64_t>({int64_t(team), chunks, int64_t(kMaxTeam)}));
  bool serial = team <= 1 || t_in_region || omp_in_parallel();
  if (!serial && P.busy.exchange(true, std::memory_order_acquire)) serial = true;  // another caller's region
  if (serial) {
    for (int64_t c = 0; c < chunks; ++c) job(ctx, c);
    return;
  }
  struct Release {
    Pool& P;
    ~Release() { P.busy.store(false, std::memory_order_release); }
  } release{P};
  const uint32_t e = P.epoch.load(std::memory_order_relaxed) + 1;
  team = grow_to(P, team, e - 1);
  P.job.store(job, std::memory_order_relaxed);
  P.ctx.store(ctx, std::memory_order_relaxed);
  P.chunks.store(chunks, std::memory_order_relaxed);
  P.team.store(team, std::memory_order_relaxed);
  P.done.store(0, std::memory_order_relaxed);
  P.failed.store(false, std::memory_order_relaxed);
  P.error = nullptr;
  for (int t = 0; t < team; ++t)
    P.tickets[t].v.store((uint64_t(e) << 32) | uint64_t(chunks * t / team), std::memory_order_relaxed);
  P.epoch.store(e, std::memory_order_seq_cst);
  for (int t = 1; t < team; ++t)  // (a thread that sees the new epoch first clears its own word)
    if (P.naps[t].asleep.load(std::memory_order_seq_cst) && P.naps[t].asleep.exchange(0, std::memory_order_seq_cst))
      wake_all(P.naps[t].asleep);
  {
    RegionGuard in_region;
    work(P, e, 0, job, ctx, chunks, team);
  }
  // Wait for chunks other threads still run: spin, then sleep, so that this core goes idle and the scheduler
  // may move a thread that waits for a busy core here.
  for (int i = 0; P.done.load(std::memory_order_acquire) < chunks && i < P.spin_rounds; ++i) cpu_relax();
  while (P.done.load(std::memory_order_seq_cst) < chunks) {
    P.caller_asleep.store(1, std::memory_order_seq_cst);
    if (P.done.load(std::memory_order_seq_cst) < chunks) wait_on(P.caller_asleep, 1);
  }
  P.caller_asleep.store(0, std::memory_order_relaxed);
  if (P.failed.load(std::memory_order_acquire)) std::rethrow_exception(P.error);
}

}  // namespace pool
}  // namespace fastnn
