// BLIS-style SGEMM driver: C = alpha*op(A)*op(B) + beta*C (+bias per column, activation).
//
// Loops: jc (NC columns of C) > pc (KC of K) > ic (MC rows) > jr (NR) > ir (MR) > micro-kernel.
// op(B)'s kc x nc block is packed once per (jc, pc) into a buffer shared by the threads; each
// thread packs its own mc x kc blocks of op(A). Threads split the ic or the jr loop, never K, so
// each C element sees the same sequence of operations whatever the thread count (bit-identical).
#include "cpu/gemm/gemm.h"

#include <omp.h>

#include "cpu/gemm/microkernel.h"
#include "cpu/gemm/pack.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace gemm_detail {

// NOTE: GEMM owns the two highest scratch slots; a caller of gemm() (conv) must use lower ones.
constexpr int kSlotA = kScratchSlots - 2, kSlotB = kScratchSlots - 1;

// Cache blocking (measured on Zen 5: L1d 48 KB, L2 1 MB): the kc x NR panel of B stays in L1,
// the mc x kc block of A in L2, the kc x nc block of B in L3.
constexpr int64_t kKC = 256, kMC = 192, kNC = 4096;
// Below this many flops (2*M*N*K) one thread is faster than waking a second one.
constexpr double kParallelFlops = 2.0e6;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Team barrier; a no-op for one thread (so the serial path never binds to an enclosing region).
inline void barrier(int nt) {
  if (nt > 1) {
#pragma omp barrier
  }
}

template <int MR, int NV>
struct Driver {
  static constexpr int NR = NV * Vec::W;
  const GemmParams& p;
  int nt;            // threads in the team
  int64_t KC, NC;    // blocking actually used (<= the constants, fitted to the problem)
  int64_t MC;        // rows per A block
  bool split_ic;     // threads take whole A blocks (else they split the jr panels of every block)
  float* Bp;         // shared packed B: ceil(NC/NR) panels of KC x NR

  Driver(const GemmParams& prm, int threads) : p(prm), nt(threads) {
    KC = p.K == 0 ? 0 : ceil_div(p.K, ceil_div(p.K, kKC));  // equal K blocks (e.g. 257 -> 2 x 129)
    NC = min64(ceil_div(p.N, NR) * NR, kNC);
    // Number of A blocks: a multiple of the thread count, so the ic split is balanced.
    int64_t nblk = ceil_div(p.M, kMC);
    if (nt > 1) nblk = ceil_div(nblk, nt) * nt;
    MC = ceil_div(ceil_div(p.M, nblk), MR) * MR;
    split_ic = true;
    if (nt > 1) {
      // Work per thread in micro-tiles: ic split vs jr split (which packs the whole A per thread).
      const int64_t tiles_m = ceil_div(p.M, MR), panels = ceil_div(NC, NR);
      const int64_t ic_load = ceil_div(ceil_div(p.M, MC), nt) * (MC / MR) * panels;
      const int64_t jr_load = tiles_m * ceil_div(panels, nt);
      if (jr_load < ic_load) {
        split_ic = false;
        MC = min64(ceil_div(p.M, MR) * MR, ceil_div(kMC, MR) * MR);
      }
    }
    Bp = scratch(kSlotB, size_t(max64(KC, 1) * NC));
  }

  void run(int t) {
    float* Ap = scratch(kSlotA, size_t(max64(KC, 1) * MC));
    const int64_t M = p.M, N = p.N, K = p.K;
    for (int64_t jc = 0; jc < N; jc += NC) {
      const int64_t nc = min64(NC, N - jc), panels = ceil_div(nc, NR);
      // K == 0 still makes one pass: the epilogue computes beta*C (+bias, act).
      const int64_t npc = K == 0 ? 1 : ceil_div(K, KC);
      for (int64_t q = 0; q < npc; ++q) {
        const int64_t pc = q * KC, kc = min64(KC, K - pc);
        const bool last = pc + kc >= K;
        const Epilogue e{p.alpha, pc == 0 ? p.beta : 1.f, last ? p.act : int(kActNone)};
        const float* bias = last ? p.bias : nullptr;
        {  // pack B: each thread a contiguous share of the NR panels
          const int64_t b0 = panels * t / nt, b1 = panels * (t + 1) / nt;
          if (b0 < b1)
            pack_b<NR>(p.B + pc * p.rsb + (jc + b0 * NR) * p.csb, p.rsb, p.csb, kc,
                       min64(nc, b1 * NR) - b0 * NR, Bp + b0 * NR * kc);
        }
        barrier(nt);
        const int64_t nblk = ceil_div(M, MC);
        for (int64_t blk = split_ic ? t : 0; blk < nblk; blk += split_ic ? nt : 1) {
          const int64_t ic = blk * MC, mc = min64(MC, M - ic);
          pack_a<MR>(p.A + ic * p.rsa + pc * p.csa, p.rsa, p.csa, mc, kc, Ap);
          const int64_t j0 = split_ic ? 0 : panels * t / nt, j1 = split_ic ? panels : panels * (t + 1) / nt;
          for (int64_t jr = j0; jr < j1; ++jr) {
            const int64_t j = jc + jr * NR;
            const int n = int(min64(NR, N - j));
            for (int64_t ir = 0; ir < mc; ir += MR) {
              microkernel<MR, NV>(kc, Ap + ir * kc, MR, Bp + jr * NR * kc, NR, p.C + (ic + ir) * p.ldc + j, p.ldc,
                                  int(min64(MR, mc - ir)), n, bias ? bias + j : nullptr, e);
            }
          }
        }
        barrier(nt);  // B is repacked next
      }
    }
  }
};

template <int MR, int NV>
void gemm_with(const GemmParams& p) {
  const double flops = 2.0 * double(p.M) * double(p.N) * double(p.K);
  int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (flops < kParallelFlops) nt = 1;
  Driver<MR, NV> d(p, nt);
  if (nt == 1) {
    d.run(0);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    // NOTE: the team may be smaller than asked (OMP_DYNAMIC, thread limits): d.nt must be exact.
#pragma omp single
    d.nt = omp_get_num_threads();
    d.run(omp_get_thread_num());
  }
}

}  // namespace gemm_detail

void gemm(const GemmParams& p) {
  using namespace gemm_detail;
  if (p.M <= 0 || p.N <= 0) return;
  // Narrow C (N within one vector): a taller tile of one vector per row wastes no columns.
  if (p.N <= Vec::W)
    gemm_with<kNarrowMR, kNarrowNV>(p);
  else
    gemm_with<kMainMR, kMainNV>(p);
}

void fill_gemm(GemmOps& t) { t.gemm = gemm; }
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
