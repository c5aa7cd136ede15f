// Fused recurrent layers (SimpleRNN, LSTM, GRU) over a whole sequence; see ops/rnn.h for layouts.
//
// Work split (Team, on fastnn's pool): a batch of at least kRowBlock rows per thread is cut into row chunks
// (multiples of kRowBlock rows) that the threads claim; a chunk runs its rows through every step alone, all units,
// so the threads share nothing and never wait for each other inside the sequence (no per-step barrier, no h_t
// crossing cores), and a thread that loses its core to another process just claims fewer chunks. Smaller
// batches split the units into one share per thread (all G gates of its units, every row) and run phase by phase
// (a step; GRU reset_before: two): h_t is the next step's GEMM operand. Each thread runs its own share of a phase
// first, then shares nobody has started, so a thread that lost its core holds nobody for long (Team::run_phases).
// Forward, per chunk and step: the pre-activations of the chunk's rows, then the fused gate pass writes h_t.
// SimpleRNN / LSTM: one GEMM [x_t | h_{t-1}] @ [W; R] + bias (K = C+U); GRU: HX = x_t @ W + bias and
// HG = h_{t-1} @ R apart (its candidate gate scales the recurrent part by r). W, R: the kernels themselves for
// whole units, else their columns of the thread's units packed once per call. The input projection is computed
// step by step into a small buffer that stays in cache, not as one GEMM over all steps into a (B,T,GU) array:
// the same flops at the same GEMM speed, without writing and re-reading 4*B*T*GU bytes (13 MB per LSTM call at
// B=64, T=100, U=128).
// Backward (BPTT from the saved activations): per step the gate pass writes the pre-activation gradients dG
// of the chunk's rows (and units), then dh_{t-1} = dG_t @ R^T (R^T's rows of the units packed once per
// thread), and each row's steps' dG are summed for the bias gradient. After the loop dkernel = x^T dG,
// drecurrent = Hp^T dG and dx = dG kernel^T are whole GEMMs over all steps (independent pieces, GemmTasks).
// Determinism: GEMM sums every element over K in a fixed order whatever the rows, tile or thread split, and
// the gate passes are elementwise, so any split and thread count give bit-identical results.
#include <immintrin.h>
#include <sched.h>

#include <algorithm>
#include <cstring>

#include "cpu/gemm/gemm.h"
#include "cpu/vmath.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
using vm::v1;
using vm::vf;

// master-thread buffers (shared by the team) and per-thread ones; gemm() owns the two highest slots
constexpr int kSharedSlot = 0, kPackSlot = 1, kThreadSlot = 2, kSharedSlot2 = 3, kCarrySlot = 4, kBiasSlot = 5;
constexpr int kStackSlot = kSharedSlot2, kRowsSlot = kCarrySlot;  // forward only: [W; R] and [x_t | h_{t-1}]
constexpr int kShareSlot = kPackSlot;  // units split: the shares' buffer (the caller's; kPackSlot is per thread only
                                       // when the rows are split)
constexpr int kPackSlot2 = kSharedSlot;  // forward: per-thread packed kernel (the backward's shared dG slot)
constexpr int64_t kUnitBlock = 16;            // units per thread are a multiple of this (whole vectors)
constexpr int64_t kRowBlock = 8;              // row chunks are a multiple of this (the GEMM tile's rows)
constexpr int64_t kRowChunksPerThread = 2;    // row chunks per thread (each at least kRowBlock rows)
constexpr double kParallelStepFlops = 4.0e5;  // recurrent GEMM flops per step below which one thread runs
constexpr int kSpinRounds = 500;  // pause instructions a barrier spins before yielding (~10 us on Zen 4)

template <class V>
inline V act_f(int a, V x) {
  switch (a) {
    case kRnnTanh: return vm::tanh(x);
    case kRnnSigmoid: return vm::sigmoid(x);
    case kRnnRelu: return vm::vmax(vm::splat<V>(0.0f), x);
    case kRnnHardSigmoid: return vm::vmin(vm::splat<V>(1.0f), vm::vmax(vm::splat<V>(0.0f), x * (1.0f / 6) + 0.5f));
    default: return x;
  }
}
// derivative of act a as a function of its output y
template <class V>
inline V act_d(int a, V y) {
  switch (a) {
    case kRnnTanh: return 1.0f - y * y;
    case kRnnSigmoid: return y * (1.0f - y);
    case kRnnRelu: return y > 0.0f ? vm::splat<V>(1.0f) : V{};
    case kRnnHardSigmoid: return ((y > 0.0f) & (y < 1.0f)) ? vm::splat<V>(1.0f / 6) : V{};
    default: return vm::splat<V>(1.0f);
  }
}

// f(V{}, j) for j in [0, n): whole vectors, then single lanes.
template <class F>
inline void for_lanes(int64_t n, const F& f) {
  int64_t j = 0;
  for (; j + vm::W <= n; j += vm::W) f(vf{}, j);
  for (; j < n; ++j) f(v1{}, j);
}
// Pulls the n floats at p toward L2 (for writing when rw) while the step's GEMM runs: the saved activations of a
// step are 16+ rows T*S floats apart in memory, so the next step's gate pass otherwise waits on their misses
// (perf: half of the backward gate pass's time on the first load of a row).
inline void prefetch(const float* p, int64_t n, bool rw) {
  for (int64_t i = 0; i < n; i += 16) {
    if (rw) __builtin_prefetch(p + i, 1, 2);
    else __builtin_prefetch(p + i, 0, 2);
  }
}

template <class V>
inline V ld(const float* p, int64_t j) { return vm::load<V>(p + j); }
template <class V>
inline void st(float* p, int64_t j, V v) { vm::store<V>(p + j, v); }

// C (M,N) (ldc) = A (M,K) (rows rsa, cols csa) @ B (K,N) (rows rsb, cols csb) (+ beta C) (+ bias)
inline void mm(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsa, int64_t csa, const float* B,
               int64_t rsb, int64_t csb, float beta, float* C, int64_t ldc, const float* bias = nullptr) {
  GemmParams g{M, N, K, 1.0f, A, rsa, csa, B, rsb, csb, beta, C, ldc, bias, kActNone};
  gemm(g);
}

// GEMMs (C = A B, beta 0) that do not depend on each other, each optionally cut into row or column pieces (every
// piece a serial GEMM whose elements sum over K in the same order as the whole: bit-identical for any cut), run
// by a team that claims the pieces in order, largest first as added: no barrier between GEMMs, and a thread
// that loses its core computes fewer pieces (one team-wide GEMM at a time spent ~10% more CPU time at 2 threads
// on the backward's weight-gradient GEMMs: a barrier per K block).
struct GemmTasks {
  static constexpr int kMax = 40;
  GemmParams g[kMax];
  int n = 0;

  // C (M,N) = A (M,K) @ B (K,N) (strides as mm), cut into `pieces` pieces of whole 16-row / 32-column blocks
  void add(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsa, int64_t csa, const float* B, int64_t rsb,
           int64_t csb, float* C, int64_t ldc, bool rows, int64_t pieces) {
    const int64_t unit = rows ? 16 : 32, total = rows ? M : N, blocks = (total + unit - 1) / unit;
    pieces = std::max<int64_t>(1, std::min<int64_t>({pieces, blocks, int64_t(kMax - n)}));
    for (int64_t i = 0; i < pieces; ++i) {
      const int64_t lo = std::min(total, blocks * i / pieces * unit), hi = std::min(total, blocks * (i + 1) / pieces * unit);
      if (hi <= lo && total > 0) continue;
      GemmParams& t = g[n++];
      t = GemmParams{M, N, K, 1.0f, A, rsa, csa, B, rsb, csb, 0.0f, C, ldc, nullptr, kActNone};
      if (rows) t.M = hi - lo, t.A = A + lo * rsa, t.C = C + lo * ldc;
      else t.N = hi - lo, t.B = B + lo * csb, t.C = C + lo;
    }
  }
  void run(int nt) const {
    if (nt <= 1 || n <= 1) {
      for (int i = 0; i < n; ++i) gemm(g[i]);  // (a lone GEMM still uses every thread itself)
      return;
    }
    run_chunks(std::min(nt, n), n, [&](int64_t i) { gemm(g[i]); });  // serial inside the region
  }
};

// One thread's share of a call: rows [b0, b1) and units [u0, u1) of them, through every step.
struct Part {
  int64_t b0, b1, u0, u1;
};

// Phases of a step when the units are split (GRU reset_before: two, its candidate waits for r*h of every unit),
// and of a whole call (Team::run_phases): one before the steps, then every step's.
inline int64_t step_phases(const RnnParams& p) { return p.cell == kRnnGruBefore ? 2 : 1; }
inline int64_t call_phases(const RnnParams& p) { return 1 + p.T * step_phases(p); }

// The team plan (see the top of the file): nt threads splitting the rows into `chunks` chunks, or the units into nt
// shares. Both run on fastnn's pool (csrc/pool.h).
constexpr int kMaxShares = 64;
// A thread's last call (run_rows): its first part of a call packs what its later parts reuse. (GCC atomics on
// plain ints: no std::atomic instantiated per ISA, see fastnn.h's ODR note.)
int64_t calls = 0;
thread_local int64_t t_last_call = -1;

struct Team {
  int nt = 1;
  bool split_rows = true;
  int64_t chunks = 1;

  static Team plan(const RnnParams& p, double step_flops) {
    const int64_t row_blocks = (p.B + kRowBlock - 1) / kRowBlock, unit_blocks = (p.U + kUnitBlock - 1) / kUnitBlock;
    int nt = max_threads();
    if (step_flops < kParallelStepFlops) nt = 1;
    Team team;
    team.split_rows = nt == 1 || row_blocks >= nt;
    team.nt = int(std::max<int64_t>(1, std::min<int64_t>(nt, team.split_rows ? row_blocks : unit_blocks)));
    if (!team.split_rows) team.nt = std::min(team.nt, kMaxShares);
    team.chunks = team.nt == 1 ? 1 : std::min<int64_t>(row_blocks, int64_t(team.nt) * kRowChunksPerThread);
    return team;
  }
  // Row chunk c of `chunks` (whole kRowBlock blocks), all units.
  Part row_chunk(const RnnParams& p, int64_t c) const {
    const int64_t blocks = (p.B + kRowBlock - 1) / kRowBlock;
    return {std::min(p.B, blocks * c / chunks * kRowBlock), std::min(p.B, blocks * (c + 1) / chunks * kRowBlock), 0,
            p.U};
  }
  // Share k of the units (whole kUnitBlock blocks), all rows.
  Part unit_share(const RnnParams& p, int64_t k) const {
    const int64_t blocks = (p.U + kUnitBlock - 1) / kUnitBlock;
    return {0, p.B, std::min(p.U, blocks * k / nt * kUnitBlock), std::min(p.U, blocks * (k + 1) / nt * kUnitBlock)};
  }
  int64_t widest_share(const RnnParams& p) const {
    int64_t most = 0;
    for (int k = 0; k < nt; ++k) {
      const Part share = unit_share(p, k);
      most = std::max(most, share.u1 - share.u0);
    }
    return most;
  }
  // f(part, first) for every row chunk (one part of all rows and units on one thread); `first` is true for the
  // first part a thread runs in this call.
  template <class F>
  void run_rows(const RnnParams& p, const F& f) const {
    if (nt == 1) return f(Part{0, p.B, 0, p.U}, true);
    const int64_t call = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
    run_chunks(nt, chunks, [&](int64_t c) {
      const bool first = t_last_call != call;
      t_last_call = call;
      f(row_chunk(p, c), first);
    });
  }
  // Units split: fn(q, k) for every phase q in [0, phases) and share k in [0, nt); phase q+1 starts when every
  // share of phase q is done (the steps' data dependence: h_t of every unit). Thread w runs share w of a phase
  // first, then the shares of that phase nobody has started. So a thread that loses its core (another process)
  // loses its share of the next phases to the others instead of holding them at a barrier for a scheduler slice
  // (LSTM(128), batch 8, one core busy: a training step took 11.9 ms on 2 threads with an OpenMP team and its
  // barrier, 7.8 ms on 1), and on an idle machine each share stays with its thread (its columns in that core's
  // cache). Which thread runs a share never changes a result: the shares' data are their own (in shared memory).
  template <class F>
  void run_phases(int64_t phases, const F& fn) const {
    const int64_t n = nt;
    int64_t next[kMaxShares];  // per share, its next unclaimed phase
    int64_t done = 0;          // shares finished, all phases together: phase q is open once done >= q*n
    int failed = 0;            // a share threw (scratch's bad_alloc): the others stop instead of waiting for it
    for (int64_t k = 0; k < n; ++k) next[k] = 0;
    run_chunks(nt, n, [&](int64_t w) {
      for (int64_t q = 0; q < phases; ++q) {
        int64_t d = __atomic_load_n(&done, __ATOMIC_ACQUIRE);
        q = std::max(q, d / n);  // (a thread that arrives late skips the phases already done)
        if (q >= phases) break;
        // wait for phase q: spin, then yield (sleeping on a futex instead, so that the scheduler could move a
        // thread waiting for a busy core here, measured no better: busy LSTM b8 step 10.0 vs 9.8 ms)
        for (int i = 0; d < q * n && !__atomic_load_n(&failed, __ATOMIC_ACQUIRE); ++i) {
          if (i < kSpinRounds) _mm_pause();
          else sched_yield();
          d = __atomic_load_n(&done, __ATOMIC_ACQUIRE);
        }
        if (__atomic_load_n(&failed, __ATOMIC_ACQUIRE)) return;
        for (int64_t v = 0; v < n; ++v) {
          const int64_t k = (w + v) % n;
          int64_t expect = q;
          if (__atomic_compare_exchange_n(&next[k], &expect, q + 1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            try {
              fn(q, k);
            } catch (...) {
              __atomic_store_n(&failed, 1, __ATOMIC_RELEASE);
              throw;  // (the pool rethrows it to the caller)
            }
            __atomic_add_fetch(&done, 1, __ATOMIC_ACQ_REL);
          }
        }
      }
    });
  }
};

// The activation pair as compile-time constants (Keras's default tanh / sigmoid: the switches in act_f and
// act_d fold away) or as run-time values.
struct DefaultActs {
  static constexpr int act = kRnnTanh, ract = kRnnSigmoid;
};
struct AnyActs {
  int act, ract;
};

template <class Acts>
struct Fwd {
  const RnnForwardArgs& a;
  const RnnParams& p;
  Acts ac;
  int64_t G, GU, S;

  int64_t tin(int64_t s) const { return p.reverse ? p.T - 1 - s : s; }

  // A part's operands. W (C, G*nu), R (U, G*nu): the kernels' columns of its units, gate by gate (the kernels
  // themselves for all units, else packed at Wp, Rp); xb, rb: the input and recurrent (reset_after) biases;
  // WR = [W; R] (SimpleRNN, LSTM); HG, HX: a step's pre-activations. They live in `own` (a units-split share's
  // region of a buffer the team shares: whichever thread runs the share's next phase finds them) or in this
  // thread's scratch.
  struct Ops {
    const float *W, *R, *xb, *rb;
    float *Wp, *Rp, *WR, *HG, *HX;
  };
  bool fused() const { return p.cell == kRnnSimple || p.cell == kRnnLstm; }
  // floats of `own` a share of nb rows and nu units needs
  int64_t own_size(int64_t nb, int64_t nu) const {
    const int64_t GN = G * nu;
    return (p.U * GN + GN) + (p.C * GN + GN) + (p.C + p.U) * GN + 2 * nb * GN;
  }
  Ops ops(const Part& pt, float* own) const {
    const int64_t U = p.U, nb = pt.b1 - pt.b0, nu = pt.u1 - pt.u0, GN = G * nu, KX = p.C + U;
    const bool has_rb = p.cell == kRnnGru && a.bias;
    Ops o{a.kernel, a.recurrent, a.bias, has_rb ? a.bias + GU : nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
    if (own) {
      o.Rp = own, o.Wp = own + U * GN + GN, o.WR = o.Wp + p.C * GN + GN, o.HG = o.WR + KX * GN;
    } else {
      if (nu < U) {
        o.Rp = scratch(kPackSlot, size_t(std::max<int64_t>(1, U * GN + GN)));
        o.Wp = scratch(kPackSlot2, size_t(std::max<int64_t>(1, p.C * GN + GN)));
      }
      o.WR = fused() ? scratch(kStackSlot, size_t(std::max<int64_t>(1, KX * GN))) : nullptr;
      o.HG = scratch(kThreadSlot, size_t(std::max<int64_t>(1, 2 * nb * GN)));
    }
    o.HX = o.HG + nb * GN;
    if (!fused()) o.WR = nullptr;
    if (nu < U) o.W = o.Wp, o.R = o.Rp, o.xb = a.bias ? o.Wp + p.C * GN : nullptr, o.rb = has_rb ? o.Rp + U * GN : nullptr;
    return o;
  }

  // The part's packs, WR, and h entering the first step (its rows and units)
  void prologue(const Part& pt, const Ops& o) const {
    const int64_t T = p.T, U = p.U, b0 = pt.b0, b1 = pt.b1, u0 = pt.u0, nu = pt.u1 - pt.u0;
    const int64_t GN = G * nu;
    const bool has_rb = p.cell == kRnnGru && a.bias;
    if (nu < U) {
      float* Rp = o.Rp;
      float* rbp = Rp + U * GN;
      for (int64_t k = 0; k < U; ++k)
        for (int64_t g = 0; g < G; ++g)
          std::memcpy(Rp + k * GN + g * nu, a.recurrent + k * GU + g * U + u0, size_t(nu) * sizeof(float));
      if (has_rb)
        for (int64_t g = 0; g < G; ++g) std::memcpy(rbp + g * nu, a.bias + GU + g * U + u0, size_t(nu) * sizeof(float));
      float* Wp = o.Wp;
      float* xbp = Wp + p.C * GN;
      for (int64_t k = 0; k < p.C; ++k)
        for (int64_t g = 0; g < G; ++g)
          std::memcpy(Wp + k * GN + g * nu, a.kernel + k * GU + g * U + u0, size_t(nu) * sizeof(float));
      if (a.bias)
        for (int64_t g = 0; g < G; ++g) std::memcpy(xbp + g * nu, a.bias + g * U + u0, size_t(nu) * sizeof(float));
    }
    if (o.WR) {  // SimpleRNN, LSTM: one GEMM per step (see step())
      std::memcpy(o.WR, o.W, size_t(p.C * GN) * sizeof(float));
      std::memcpy(o.WR + p.C * GN, o.R, size_t(U * GN) * sizeof(float));
    }
    // h entering the first step, and the zero "previous output"
    const int64_t t0 = tin(0);
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t j = 0; j < nu; ++j) {
        a.hp[(b * T + t0) * U + u0 + j] = a.h0 ? a.h0[b * U + u0 + j] : 0.0f;
        a.last[b * U + u0 + j] = 0.0f;
      }
  }

  // Step s of a part. half 0: the pre-activations and the gate pass (GRU reset_before: up to r*h, the candidate
  // waits for r*h of every unit); half 1 (GRU reset_before only): the candidate and h_t.
  void step(const Part& pt, const Ops& o, int64_t s, int half) const {
    const int64_t T = p.T, U = p.U, b0 = pt.b0, b1 = pt.b1, nb = b1 - b0, u0 = pt.u0, nu = pt.u1 - pt.u0;
    const int64_t GN = G * nu;
    const bool before = p.cell == kRnnGruBefore;
    const bool fused = this->fused();
    const int64_t KX = p.C + U;
    const float *W = o.W, *R = o.R, *xb = o.xb, *rb = o.rb, *WR = o.WR;
    float *HG = o.HG, *HX = o.HX;
    const int64_t tt = tin(s), tn = s + 1 < T ? tin(s + 1) : -1, tp = s > 0 ? tin(s - 1) : -1;
    if (half == 0) {
      // SimpleRNN, LSTM: HG = [x_t | h_{t-1}] (nb, C+U) @ [W; R] (C+U, G*nu) + bias (K = C+U: one pass over the
      // C tile instead of two, and the gate pass reads one buffer)
      float* XH = fused ? scratch(kRowsSlot, size_t(std::max<int64_t>(1, nb * KX))) : nullptr;
      if (nu > 0 && fused) {
        for (int64_t b = b0; b < b1; ++b) {
          std::memcpy(XH + (b - b0) * KX, a.x + (b * T + tt) * p.C, size_t(p.C) * sizeof(float));
          std::memcpy(XH + (b - b0) * KX + p.C, a.hp + (b * T + tt) * U, size_t(U) * sizeof(float));
        }
        mm(nb, GN, KX, XH, KX, 1, WR, GN, 1, 0.0f, HG, GN, xb);
      } else if (nu > 0) {  // HX = x_t @ W + bias; HG = h_{t-1} @ R (+ recurrent bias) (reset_before: z, r only)
        mm(nb, GN, p.C, a.x + (b0 * T + tt) * p.C, T * p.C, 1, W, GN, 1, 0.0f, HX, GN, xb);
        mm(nb, before ? 2 * nu : GN, U, a.hp + (b0 * T + tt) * U, T * U, 1, R, GN, 1, 0.0f, HG, GN, rb);
      }
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t bt = b * T + tt;
        if (tn >= 0) {  // row b of what step s+1 reads (x) and writes (activations, c, h), a step ahead
          const int64_t bn = b * T + tn;
          prefetch(a.x + bn * p.C, p.C, false);
          for (int64_t g = 0; g < S / U; ++g) prefetch(a.acts + bn * S + g * U + u0, nu, true);
          if (a.cs) prefetch(a.cs + bn * U + u0, nu, true);
          if (s + 2 < T) prefetch(a.hp + (b * T + tin(s + 2)) * U + u0, nu, true);
        }
        const float* xg = HX + (b - b0) * GN;
        const float* hg = HG + (b - b0) * GN;
        const float* hprev = a.hp + bt * U + u0;
        float* sv = a.acts + bt * S + u0;
        float* hnext = tn >= 0 ? a.hp + (b * T + tn) * U + u0 : a.h_out + b * U + u0;
        float* last = a.last + b * U + u0;
        const bool valid = !a.mask || a.mask[bt];
        float* c = a.cs ? a.cs + bt * U + u0 : nullptr;
        const float* cprev = !a.cs ? nullptr : tp >= 0 ? a.cs + (b * T + tp) * U + u0 : a.c0 ? a.c0 + b * U + u0 : nullptr;
        if (!valid) {
          if (p.zero_masked) std::memset(last, 0, size_t(nu) * sizeof(float));
          if (!before) std::memcpy(hnext, hprev, size_t(nu) * sizeof(float));
          for (int64_t g = 0; g < S / U; ++g) std::memset(sv + g * U, 0, size_t(nu) * sizeof(float));
          if (c) {
            if (cprev) std::memcpy(c, cprev, size_t(nu) * sizeof(float));
            else std::memset(c, 0, size_t(nu) * sizeof(float));
          }
          continue;
        }
        for_lanes(nu, [&](auto tag, int64_t j) {
          using V = decltype(tag);
          V h;
          if (p.cell == kRnnSimple) {
            h = act_f(ac.act, ld<V>(hg, j));  // (fused: hg holds the whole pre-activation)
            st(sv, j, h);
          } else if (p.cell == kRnnLstm) {
            const V i = act_f(ac.ract, ld<V>(hg, j));  // (fused: hg holds the whole pre-activations)
            const V f = act_f(ac.ract, ld<V>(hg + nu, j));
            const V gg = act_f(ac.act, ld<V>(hg + 2 * nu, j));
            const V o = act_f(ac.ract, ld<V>(hg + 3 * nu, j));
            const V cn = f * (cprev ? ld<V>(cprev, j) : V{}) + i * gg;
            h = o * act_f(ac.act, cn);
            st(sv, j, i), st(sv + U, j, f), st(sv + 2 * U, j, gg), st(sv + 3 * U, j, o), st(c, j, cn);
          } else {
            const V z = act_f(ac.ract, ld<V>(xg, j) + ld<V>(hg, j));
            const V r = act_f(ac.ract, ld<V>(xg + nu, j) + ld<V>(hg + nu, j));
            st(sv, j, z), st(sv + U, j, r);
            if (before) {  // the candidate waits for r*h of every unit
              st(sv + 3 * U, j, r * ld<V>(hprev, j));
              return;
            }
            const V inner = ld<V>(hg + 2 * nu, j);
            const V hh = act_f(ac.act, ld<V>(xg + 2 * nu, j) + r * inner);
            h = z * ld<V>(hprev, j) + (1.0f - z) * hh;
            st(sv + 2 * U, j, hh), st(sv + 3 * U, j, inner);
          }
          st(hnext, j, h);
          st(last, j, h);
        });
      }
      if (before) return;  // (half 1 writes y)
    } else {
      if (nu > 0)
        mm(nb, nu, U, a.acts + (b0 * T + tt) * S + 3 * U, T * S, 1, R + 2 * nu, GN, 1, 0.0f, HG + 2 * nu, GN);
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t bt = b * T + tt;
        const float* hprev = a.hp + bt * U + u0;
        float* hnext = tn >= 0 ? a.hp + (b * T + tn) * U + u0 : a.h_out + b * U + u0;
        if (a.mask && !a.mask[bt]) {
          std::memcpy(hnext, hprev, size_t(nu) * sizeof(float));
          continue;
        }
        const float* xg = HX + (b - b0) * GN + 2 * nu;
        const float* hg = HG + (b - b0) * GN + 2 * nu;
        float* sv = a.acts + bt * S + u0;
        float* last = a.last + b * U + u0;
        for_lanes(nu, [&](auto tag, int64_t j) {
          using V = decltype(tag);
          const V z = ld<V>(sv, j), hh = act_f(ac.act, ld<V>(xg, j) + ld<V>(hg, j));
          const V h = z * ld<V>(hprev, j) + (1.0f - z) * hh;
          st(sv + 2 * U, j, hh), st(hnext, j, h), st(last, j, h);
        });
      }
    }
    if (a.y)
      for (int64_t b = b0; b < b1; ++b)
        std::memcpy(a.y + (b * T + s) * U + u0, a.last + b * U + u0, size_t(nu) * sizeof(float));
  }

  // The final c of the part's rows and units.
  void finish(const Part& pt) const {
    const int64_t T = p.T, U = p.U, b0 = pt.b0, b1 = pt.b1, u0 = pt.u0, nu = pt.u1 - pt.u0;
    if (a.c_out)
      for (int64_t b = b0; b < b1; ++b) {
        const float* c = a.cs + (b * T + tin(T - 1)) * U + u0;
        std::memcpy(a.c_out + b * U + u0, c, size_t(nu) * sizeof(float));
      }
  }

  // A part alone: every step in order (the rows split, or one thread; nothing is reused across parts).
  void part(const Part& pt, bool) const {
    const Ops o = ops(pt, nullptr);
    prologue(pt, o);
    for (int64_t s = 0; s < p.T; ++s)
      for (int h = 0; h < step_phases(p); ++h) step(pt, o, s, h);
    finish(pt);
  }
  // Phase q of a units-split share (Team::run_phases): 0 the prologue, then each step's halves; the last also
  // copies the final c.
  void phase(const Part& pt, const Ops& o, int64_t q) const {
    if (q == 0) return prologue(pt, o);
    step(pt, o, (q - 1) / step_phases(p), int((q - 1) % step_phases(p)));
    if (q == call_phases(p) - 1) finish(pt);
  }
};

template <class Acts>
struct Bwd {
  const RnnBackwardArgs& a;
  const RnnParams& p;
  Acts ac;
  int64_t G, GU, S;
  float* dGx;  // (B,T,GU) gradient of x @ kernel + bias
  float* dGh;  // (B,T,GU) gradient of h @ recurrent (+ recurrent bias): dGx itself except for GRU reset_after
  float* dH;   // (B,U) dh carried to the previous step
  float* dC;   // (B,U) dc carried (LSTM)
  float* pend; // (B,U) output gradient carried to the previous output (masked steps)
  float* dbx;  // (B,GU) per row, the sum over its steps of dGx (the input bias's gradient), or null
  float* dbh;  // (B,GU) likewise of dGh (GRU reset_after's recurrent bias), or null

  // dbx[b] += gx (and dbh[b] += gh) for gates [g0, g1) of the units: the bias gradient summed while dG is hot
  // (each row's steps in the loop's order; the rows are added in order after it: thread-count independent)
  void add_bias(int64_t b, int64_t u0, int64_t nu, const float* gx, const float* gh, int64_t g0, int64_t g1) const {
    if (!dbx) return;
    for (int64_t g = g0; g < g1; ++g) {
      float* rx = dbx + b * GU + g * p.U + u0;
      float* rh = dbh ? dbh + b * GU + g * p.U + u0 : nullptr;
      for_lanes(nu, [&](auto tag, int64_t j) {
        using V = decltype(tag);
        st(rx, j, ld<V>(rx, j) + ld<V>(gx + g * p.U, j));
        if (rh) st(rh, j, ld<V>(rh, j) + ld<V>(gh + g * p.U, j));
      });
    }
  }

  int64_t tin(int64_t s) const { return p.reverse ? p.T - 1 - s : s; }

  // A part's operand RT (GU, nu): rows u0..u1 of the recurrent kernel, transposed: dh[:, units] = dG @ RT; in
  // `own` (a units-split share's, in a buffer the team shares) or this thread's scratch
  using Ops = float*;
  float* ops(const Part& pt, float* own) const {
    return own ? own : scratch(kPackSlot, size_t(std::max<int64_t>(1, GU * (pt.u1 - pt.u0))));
  }
  int64_t own_size(int64_t, int64_t nu) const { return GU * nu; }

  // The part's RT (when `pack`), and its rows' and units' carried gradients and bias sums
  void prologue(const Part& pt, float* RT, bool pack) const {
    const int64_t U = p.U, b0 = pt.b0, b1 = pt.b1, u0 = pt.u0, u1 = pt.u1, nu = u1 - u0;
    if (pack)
      for (int64_t j = 0; j < nu; ++j)
        for (int64_t q = 0; q < GU; ++q) RT[q * nu + j] = a.recurrent[(u0 + j) * GU + q];
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t j = u0; j < u1; ++j) {
        dH[b * U + j] = a.dh_out ? a.dh_out[b * U + j] : 0.0f;
        dC[b * U + j] = a.dc_out ? a.dc_out[b * U + j] : 0.0f;
        pend[b * U + j] = 0.0f;
      }
    if (dbx)
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t g = 0; g < G; ++g) {
          std::memset(dbx + b * GU + g * U + u0, 0, size_t(nu) * sizeof(float));
          if (dbh) std::memset(dbh + b * GU + g * U + u0, 0, size_t(nu) * sizeof(float));
        }
  }

  // Step s's gate pass: the pre-activation gradients dG of the part's rows and units
  void gates(const Part& pt, int64_t s) const {
    const int64_t T = p.T, U = p.U, b0 = pt.b0, b1 = pt.b1, u0 = pt.u0, nu = pt.u1 - pt.u0;
    const bool after = p.cell == kRnnGru, before = p.cell == kRnnGruBefore;
    const int64_t tt = tin(s), tp = s > 0 ? tin(s - 1) : -1;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t bt = b * T + tt;
      if (tp >= 0) {  // row b of what step s-1 reads (activations, c, c before it, h, dy) and writes (dG)
        const int64_t bp = b * T + tp;
        for (int64_t g = 0; g < S / U; ++g) prefetch(a.acts + bp * S + g * U + u0, nu, false);
        if (a.cs) {
          prefetch(a.cs + bp * U + u0, nu, false);
          if (s > 1) prefetch(a.cs + (b * T + tin(s - 2)) * U + u0, nu, false);
        } else {
          prefetch(a.hp + bp * U + u0, nu, false);
        }
        if (a.dy) prefetch(a.dy + (b * T + s - 1) * U + u0, nu, false);
        for (int64_t g = 0; g < G; ++g) {
          prefetch(dGx + bp * GU + g * U + u0, nu, true);
          if (dGh != dGx) prefetch(dGh + bp * GU + g * U + u0, nu, true);
        }
      }
      float* dh = dH + b * U + u0;
      float* dc = dC + b * U + u0;
      float* pd = pend + b * U + u0;
      float* gx = dGx + bt * GU + u0;
      float* gh = dGh + bt * GU + u0;
      const float* dy = a.dy ? a.dy + (b * T + s) * U + u0 : nullptr;
      const float* dl = s == T - 1 && a.dlast ? a.dlast + b * U + u0 : nullptr;
      const bool valid = !a.mask || a.mask[bt];
      if (!valid) {
        if (!p.zero_masked)  // the output repeats the previous one: its gradient goes there
          for (int64_t j = 0; j < nu; ++j) pd[j] += (dy ? dy[j] : 0.0f) + (dl ? dl[j] : 0.0f);
        for (int64_t g = 0; g < G; ++g) {
          std::memset(gx + g * U, 0, size_t(nu) * sizeof(float));
          if (gh != gx) std::memset(gh + g * U, 0, size_t(nu) * sizeof(float));
        }
        continue;
      }
      const float* sv = a.acts + bt * S + u0;
      const float* hprev = a.hp + bt * U + u0;
      const float* c = a.cs ? a.cs + bt * U + u0 : nullptr;
      const float* cprev = !a.cs ? nullptr : tp >= 0 ? a.cs + (b * T + tp) * U + u0 : a.c0 ? a.c0 + b * U + u0 : nullptr;
      for_lanes(nu, [&](auto tag, int64_t j) {
        using V = decltype(tag);
        V tot = ld<V>(pd, j);
        if (dy) tot += ld<V>(dy, j);
        if (dl) tot += ld<V>(dl, j);
        st(pd, j, V{});
        const V d = ld<V>(dh, j) + tot;
        if (p.cell == kRnnSimple) {
          st(gx, j, d * act_d(ac.act, ld<V>(sv, j)));
          st(dh, j, V{});
        } else if (p.cell == kRnnLstm) {
          const V i = ld<V>(sv, j), f = ld<V>(sv + U, j), gg = ld<V>(sv + 2 * U, j), o = ld<V>(sv + 3 * U, j);
          const V tc = act_f(ac.act, ld<V>(c, j));
          const V dct = ld<V>(dc, j) + d * o * act_d(ac.act, tc);
          st(gx, j, dct * gg * act_d(ac.ract, i));
          st(gx + U, j, dct * (cprev ? ld<V>(cprev, j) : V{}) * act_d(ac.ract, f));
          st(gx + 2 * U, j, dct * i * act_d(ac.act, gg));
          st(gx + 3 * U, j, d * tc * act_d(ac.ract, o));
          st(dc, j, dct * f);
          st(dh, j, V{});
        } else {
          const V z = ld<V>(sv, j), hh = ld<V>(sv + 2 * U, j);
          const V dhh = d * (1.0f - z) * act_d(ac.act, hh);
          st(gx, j, d * (ld<V>(hprev, j) - hh) * act_d(ac.ract, z));
          st(gx + 2 * U, j, dhh);
          st(dh, j, d * z);
          if (after) {
            const V r = ld<V>(sv + U, j);
            st(gx + U, j, dhh * ld<V>(sv + 3 * U, j) * act_d(ac.ract, r));
            st(gh, j, ld<V>(gx, j)), st(gh + U, j, ld<V>(gx + U, j)), st(gh + 2 * U, j, dhh * r);
          }
        }
      });
      if (before) {  // (the reset gate's dG comes after the barrier)
        add_bias(b, u0, nu, gx, gh, 0, 1);
        add_bias(b, u0, nu, gx, gh, 2, 3);
      } else {
        add_bias(b, u0, nu, gx, gh, 0, G);
      }
    }
  }

  // GRU reset_before, step s, once dG of every unit is complete: the reset gate's dG
  void reset_gate(const Part& pt, const float* RT, int64_t s) const {
    const int64_t T = p.T, U = p.U, b0 = pt.b0, b1 = pt.b1, nb = b1 - b0, u0 = pt.u0, nu = pt.u1 - pt.u0;
    const int64_t tt = tin(s);
    float* drh = scratch(kThreadSlot, size_t(std::max<int64_t>(1, nb * nu)));
    if (nu > 0)  // d(r*h)[:, units] = dhh_pre @ R_h^T
      mm(nb, nu, U, dGx + (b0 * T + tt) * GU + 2 * U, T * GU, 1, RT + 2 * U * nu, nu, 1, 0.0f, drh, nu);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t bt = b * T + tt;
      if (a.mask && !a.mask[bt]) continue;
      const float* sv = a.acts + bt * S + u0;
      const float* hprev = a.hp + bt * U + u0;
      float* gx = dGx + bt * GU + u0;
      float* dh = dH + b * U + u0;
      const float* dr = drh + (b - b0) * nu;
      for_lanes(nu, [&](auto tag, int64_t j) {
        using V = decltype(tag);
        const V r = ld<V>(sv + U, j), x = ld<V>(dr, j);
        st(gx + U, j, x * ld<V>(hprev, j) * act_d(ac.ract, r));
        st(dh, j, ld<V>(dh, j) + x * r);
      });
      add_bias(b, u0, nu, gx, gx, 1, 2);
    }
  }

  // Step s, once dG of every unit is complete: dh_{t-1} of the part's units
  void carry(const Part& pt, const float* RT, int64_t s) const {
    const int64_t T = p.T, U = p.U, b0 = pt.b0, nb = pt.b1 - pt.b0, u0 = pt.u0, nu = pt.u1 - pt.u0;
    const int64_t tt = tin(s), K = p.cell == kRnnGruBefore ? 2 * U : GU;
    if (nu > 0)  // dh_{t-1}[:, units] += dGh_t @ R^T[:, units]
      mm(nb, nu, K, dGh + (b0 * T + tt) * GU, T * GU, 1, RT, nu, 1, 1.0f, dH + b0 * U + u0, U);
  }

  // A part alone, every step (the rows split, or one thread); `first`: the thread's first part of the call (it
  // packs RT, the same for all its parts)
  void part(const Part& pt, bool first) const {
    float* RT = ops(pt, nullptr);
    prologue(pt, RT, first);
    for (int64_t s = p.T - 1; s >= 0; --s) {
      gates(pt, s);
      if (p.cell == kRnnGruBefore) reset_gate(pt, RT, s);
      carry(pt, RT, s);
    }
  }
  // Phase q of a units-split share (Team::run_phases): 0 the prologue and the last step's gate pass; then per
  // step s (from the last): [GRU reset_before: the reset gate], then s's carry and step s-1's gate pass.
  void phase(const Part& pt, float* RT, int64_t q) const {
    if (q == 0) {
      prologue(pt, RT, true);
      return gates(pt, p.T - 1);
    }
    const int64_t s = p.T - 1 - (q - 1) / step_phases(p);
    if (step_phases(p) == 2 && (q - 1) % 2 == 0) return reset_gate(pt, RT, s);
    carry(pt, RT, s);
    if (s > 0) gates(pt, s - 1);
  }
};
// A call's parts on the team (W: Fwd or Bwd): row chunks each alone, or the units' shares phase by phase, each
// share's packs and step buffers (W::Ops) in one buffer of this (the calling) thread's scratch that the team shares.
template <class W>
void run_call(const Team& team, const W& w) {
  const RnnParams& p = w.p;
  if (team.split_rows) return team.run_rows(p, [&](const Part& pt, bool first) { w.part(pt, first); });
  Part parts[kMaxShares];
  typename W::Ops ops[kMaxShares];
  const int64_t stride = w.own_size(p.B, team.widest_share(p));
  float* buf = scratch(kShareSlot, size_t(std::max<int64_t>(1, team.nt * stride)));
  for (int k = 0; k < team.nt; ++k) parts[k] = team.unit_share(p, k), ops[k] = w.ops(parts[k], buf + k * stride);
  team.run_phases(call_phases(p), [&](int64_t q, int64_t k) { w.phase(parts[k], ops[k], q); });
}

void rnn_forward(const RnnForwardArgs& a, const RnnParams& p) {
  const int64_t B = p.B, T = p.T, U = p.U, G = rnn_gates(p.cell), GU = G * U;
  if (B == 0 || U == 0) return;
  if (T == 0) {  // no step: the state passes through, the output is zero
    for (int64_t i = 0; i < B * U; ++i) {
      a.h_out[i] = a.h0 ? a.h0[i] : 0.0f;
      a.last[i] = 0.0f;
      if (a.c_out) a.c_out[i] = a.c0 ? a.c0[i] : 0.0f;
    }
    return;
  }
  const Team team = Team::plan(p, 2.0 * double(B) * double(U) * double(GU));
  const int64_t S = rnn_saved_width(p.cell, U);
  if (p.act == kRnnTanh && p.ract == kRnnSigmoid) run_call(team, Fwd<DefaultActs>{a, p, {}, G, GU, S});
  else run_call(team, Fwd<AnyActs>{a, p, {p.act, p.ract}, G, GU, S});
}

void rnn_backward(const RnnBackwardArgs& a, const RnnParams& p) {
  const int64_t B = p.B, T = p.T, C = p.C, U = p.U, G = rnn_gates(p.cell), GU = G * U, BT = B * T;
  const int64_t S = rnn_saved_width(p.cell, U);
  const bool after = p.cell == kRnnGru, before = p.cell == kRnnGruBefore;
  float* dGx = scratch(kSharedSlot, size_t(std::max<int64_t>(1, BT * GU)));
  float* dGh = after ? scratch(kSharedSlot2, size_t(std::max<int64_t>(1, BT * GU))) : dGx;
  float* carry = scratch(kCarrySlot, size_t(std::max<int64_t>(1, 3 * B * U)));
  float *dH = carry, *dC = carry + B * U, *pend = carry + 2 * B * U;
  const bool want_db = a.dbias && a.has_bias;
  float* dbx = want_db ? scratch(kBiasSlot, size_t(std::max<int64_t>(1, (after ? 2 : 1) * B * GU))) : nullptr;
  float* dbh = want_db && after ? dbx + B * GU : nullptr;
  const Team team = Team::plan(p, 2.0 * double(B) * double(U) * double(GU));
  if (B > 0 && U > 0) {
    if (p.act == kRnnTanh && p.ract == kRnnSigmoid)
      run_call(team, Bwd<DefaultActs>{a, p, {}, G, GU, S, dGx, dGh, dH, dC, pend, dbx, dbh});
    else
      run_call(team, Bwd<AnyActs>{a, p, {p.act, p.ract}, G, GU, S, dGx, dGh, dH, dC, pend, dbx, dbh});
  }
  if (a.dh0)
    for (int64_t i = 0; i < B * U; ++i) a.dh0[i] = T > 0 ? dH[i] : (a.dh_out ? a.dh_out[i] : 0.0f);
  if (a.dc0)
    for (int64_t i = 0; i < B * U; ++i) a.dc0[i] = T > 0 ? dC[i] : (a.dc_out ? a.dc_out[i] : 0.0f);
  // whole-sequence GEMMs (K = 0 writes zeros), as independent serial tasks
  GemmTasks tasks;
  // each big GEMM cut in pieces: the weight gradients by columns (a piece packs only its columns of dG, the
  // big operand, and all of the small x^T / Hp^T), dx by rows
  const int64_t pieces = team.nt;
  if (a.dkernel) tasks.add(C, GU, BT, a.x, 1, C, dGx, GU, 1, a.dkernel, GU, false, pieces);
  if (a.drecurrent) {
    if (before) {
      tasks.add(U, 2 * U, BT, a.hp, 1, U, dGx, GU, 1, a.drecurrent, GU, false, pieces);
      tasks.add(U, U, BT, a.acts + 3 * U, 1, S, dGx + 2 * U, GU, 1, a.drecurrent + 2 * U, GU, false, pieces);
    } else {
      tasks.add(U, GU, BT, a.hp, 1, U, dGh, GU, 1, a.drecurrent, GU, false, pieces);
    }
  }
  if (a.dx) tasks.add(BT, C, GU, dGx, GU, 1, a.kernel, 1, GU, a.dx, C, true, 2 * pieces);
  tasks.run(team.nt);
  if (want_db)  // the rows' sums, added in row order
    for (int64_t k = 0; k < (after ? 2 : 1); ++k) {
      float* db = a.dbias + k * GU;
      const float* rows = k == 0 ? dbx : dbh;
      std::fill(db, db + GU, 0.0f);
      for (int64_t b = 0; b < B && U > 0; ++b)
        for_lanes(GU, [&](auto tag, int64_t j) {
          using V = decltype(tag);
          st(db, j, ld<V>(db, j) + ld<V>(rows + b * GU, j));
        });
    }
}
}  // namespace

void fill_rnn(RnnOps& t) {
  t.rnn_forward = rnn_forward;
  t.rnn_backward = rnn_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
