// BLIS-style SGEMM driver: C = alpha*op(A)*op(B) + beta*C (+bias per column, activation).
//
// Loops: jc (NC columns of C) > pc (KC of K) > ic (MC rows) > jr (NR) > ir (MR) > micro-kernel.
// op(B)'s kc x nc block is packed once per (jc, pc) into a buffer shared by the threads; each
// thread packs its own mc x kc blocks of op(A). Threads split the ic or the jr loop, never K, so
// each C element sees the same sequence of operations whatever the thread count (bit-identical).
// Row blocks (ic) and B's panels are chunks of fastnn's pool (parallel.h): where there are more blocks than
// threads, a thread that loses its core to another process computes fewer of them instead of holding the team
// at the next barrier (issue #19).
// Small problems: no threads below kParallelFlops; panels used only a few times are read in place
// instead of packed; a narrow C (N <= MR) is computed as C^T so that its rows fill vector lanes.
#include "cpu/gemm/gemm.h"

#include "cpu/gemm/microkernel.h"
#include "cpu/gemm/pack.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace gemm_detail {

// NOTE: GEMM owns the two highest scratch slots; a caller of gemm() (conv) must use lower ones.
constexpr int kSlotA = kScratchSlots - 2, kSlotB = kScratchSlots - 1;

// Cache blocking, measured on the project's 2-core AMD EPYC (1 thread, square 512..2048; flat
// within +-2% for KC 384..1024 and MC 96..288): the mc x kc block of A (384 KB) stays in L2, the kc x NR panel of B (64 KB) in
// L1/L2, the kc x nc block of B in L3. A large KC means fewer read-modify-write passes over C.
constexpr int64_t kKC = 512, kMC = 192, kNC = 4096;
// Read an operand's panels in place (no packing) when each is used at most this many times:
// an A panel once per NR-column panel, a B panel once per MR-row tile. A: packing costs about as
// much as 4 uses (training shapes). B: a row-major B read in place is as fast as packed up to 32
// row tiles (M <= 256 on AVX-512) and saves the pack and its barriers: one thread 128x9216x128
// 3,060 -> 2,860 us, 128x784x128 238 -> 227 us; two threads 1,720 -> 1,370 us and 149 -> 115 us
// (with 8, the earlier setting).
constexpr int64_t kInPlaceAUses = 4, kInPlaceBUses = 32, kFarRows = 512;
// Below this many flops (2*M*N*K, about 20 us on one core) one thread is faster than waking a
// second one (128^3 = 4.2 MFLOP already runs 1.76x faster on two threads, 64^3 stays serial).
constexpr double kParallelFlops = 2.0e6;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// kTransC: p describes C^T = op(B)^T op(A)^T (see gemm()): tiles are stored transposed and the
// bias is per row of p's C.
template <int MR, int NV, bool kTransC>
struct Driver {
  static constexpr int NR = NV * Vec::W;
  const GemmParams& p;
  int64_t KC, NC;    // blocking actually used (<= the constants, fitted to the problem)
  int64_t MC;        // rows per A block
  bool split_ic;     // threads split the rows of C (else the jr panels of every A block)
  bool direct_a;     // full MR-row panels of op(A) are read in place (row- or column-major op(A))
  bool row_a;        // ... and op(A) is row-major (else column-major)
  bool direct_b;     // full NR-column panels of op(B) are read in place (row-major op(B))
  float* Bp;         // shared packed B: ceil(NC/NR) panels of KC x NR
  // nt: the planned team size.
  Driver(const GemmParams& prm, int nt) : p(prm) {
    KC = p.K == 0 ? 0 : ceil_div(p.K, ceil_div(p.K, kKC));  // equal K blocks
    NC = min64(ceil_div(p.N, NR) * NR, kNC);
    const int64_t tiles_m = ceil_div(p.M, MR), panels = ceil_div(NC, NR);
    // Threads split the MR-row tiles (each thread a contiguous range, cut into A blocks of at most
    // MC rows) or, when that balances worse, the NR-column panels of every A block.
    // Few row tiles (<= 2 per thread) and >= 2 panels per thread: split the panels, so each thread
    // packs and reads only its own share of B and never waits on the other's packing (32x128 @
    // 128x784^T ran slower on two threads than on one: 108 vs 71 us).
    const bool few_rows = tiles_m <= 2 * nt && panels >= 2 * nt;
    split_ic = nt == 1 || (!few_rows && ceil_div(tiles_m, nt) * panels <= tiles_m * ceil_div(panels, nt));
    const int64_t mc_tiles = max64(1, kMC / MR);
    // equal blocks of at most kMC rows, at least one per thread when threads split the rows. NOTE: not more
    // (cut smaller to balance a thread that lost its core): 3 per thread made the 2-thread MLP b32 training step
    // 12% slower on an idle machine (0.199 vs 0.175 ms) and gained nothing measurable with one core busy.
    const int64_t blocks = max64(ceil_div(tiles_m, mc_tiles), split_ic ? nt : 1);
    MC = ceil_div(tiles_m, blocks) * MR;
    // Packing pays only when a panel is reused: an A panel once per jr panel, a B panel once per
    // MR-row tile. Few uses: read in place (packing only partial panels).
    const int64_t a_uses = split_ic ? panels : ceil_div(panels, nt);
    row_a = p.csa == 1;
    direct_a = (row_a || p.rsa == 1) && a_uses <= kInPlaceAUses;
    // ... unless B is deep (several K blocks) with rows >= 2 KB apart (kFarRows floats): a kc x NR panel read in
    // place then spans a page every other row and its loads stalled the micro-kernel (an LSTM's dkernel =
    // x^T dG, 128 x 512 x 6400, dG rows 512 floats apart: 84 -> 92-95 GF/s on one core packed)
    direct_b = p.csb == 1 && ceil_div(p.M, MR) <= kInPlaceBUses && !(p.rsb >= kFarRows && p.K > kKC);
    Bp = scratch(kSlotB, size_t(max64(KC, 1) * NC));
  }

  // B's panel jr of pass (jc, pc), unless it is read in place.
  void pack_panel(int64_t jc, int64_t pc, int64_t jr) const {
    const int64_t kc = min64(KC, p.K - pc), n = min64(NR, min64(NC, p.N - jc) - jr * NR);
    if (!(direct_b && n == NR)) pack_b<NR>(p.B + pc * p.rsb + (jc + jr * NR) * p.csb, p.rsb, p.csb, kc, n, Bp + jr * NR * kc);
  }

  // Row block k (MC rows of C) of pass (jc, pc) times the NR-column panels [j0, j1) of the pass's B block.
  void block(int64_t jc, int64_t pc, int64_t k, int64_t j0, int64_t j1) const {
    const int64_t M = p.M, N = p.N, K = p.K;
    const int64_t kc = min64(KC, K - pc);
    const bool last = pc + kc >= K;
    const Epilogue e{p.alpha, pc == 0 ? p.beta : 1.f, last ? p.act : int(kActNone)};
    const float* bias = last ? p.bias : nullptr;
    const float* B = p.B + pc * p.rsb + jc * p.csb;
    float* Ap = scratch(kSlotA, size_t(max64(KC, 1) * MC));  // this thread's
    const int64_t ic = k * MC, mc = min64(MC, M - ic), full = mc / MR * MR;
    const float* A = p.A + ic * p.rsa + pc * p.csa;
    if (!direct_a)
      pack_a<MR>(A, p.rsa, p.csa, mc, kc, Ap);
    else if (full < mc)  // only the partial last panel, at Ap
      pack_a<MR>(A + full * p.rsa, p.rsa, p.csa, mc - full, kc, Ap);
    for (int64_t jr = j0; jr < j1; ++jr) {
      const int64_t j = jc + jr * NR;
      const int n = int(min64(NR, N - j));
      const bool in_place_b = direct_b && n == NR;
      const float* b = in_place_b ? B + jr * NR : Bp + jr * NR * kc;
      const int64_t sb = in_place_b ? p.rsb : NR;
      const int64_t rs_c = kTransC ? 1 : p.ldc, cs_c = kTransC ? p.ldc : 1;
      float* c = p.C + ic * rs_c + j * cs_c;
      const float* bj = !bias ? nullptr : kTransC ? bias + ic : bias + j;
      for (int64_t ir = 0; ir < mc; ir += MR, c += MR * rs_c, bj = kTransC && bj ? bj + MR : bj) {
        const int m = int(min64(MR, mc - ir));
        if (!direct_a)
          microkernel<MR, NV, false, kTransC>(kc, Ap + ir * kc, MR, b, sb, c, p.ldc, m, n, bj, e);
        else if (m < MR)
          microkernel<MR, NV, false, kTransC>(kc, Ap, MR, b, sb, c, p.ldc, m, n, bj, e);
        else if (row_a)
          microkernel<MR, NV, true, kTransC>(kc, A + ir * p.rsa, p.rsa, b, sb, c, p.ldc, m, n, bj, e);
        else
          microkernel<MR, NV, false, kTransC>(kc, A + ir, p.csa, b, sb, c, p.ldc, m, n, bj, e);
      }
    }
  }

  // The passes: jc (NC columns) > pc (K blocks; K == 0 still makes one pass: the epilogue computes beta*C, +bias,
  // act). Threads splitting the rows: per pass, the B panels that need packing as one pool region (shared B),
  // then the row blocks as another; a region ends when its chunks are done (the barrier of a team). Threads
  // splitting the panels: chunk t is every pass over thread t's columns (it packs the B panels it reads): no
  // barrier at all.
  void run(int nt) const {
    const int64_t M = p.M, N = p.N, K = p.K, blocks = ceil_div(M, MC);
    const int64_t npc = K == 0 ? 1 : ceil_div(K, KC);
    if (!split_ic) {
      run_chunks(nt, nt, [&](int64_t t) {
        for (int64_t jc = 0; jc < N; jc += NC) {
          const int64_t panels = ceil_div(min64(NC, N - jc), NR), j0 = panels * t / nt, j1 = panels * (t + 1) / nt;
          for (int64_t q = 0; q < npc; ++q) {
            for (int64_t jr = j0; jr < j1; ++jr) pack_panel(jc, q * KC, jr);
            for (int64_t k = 0; k < blocks; ++k) block(jc, q * KC, k, j0, j1);
          }
        }
      });
      return;
    }
    for (int64_t jc = 0; jc < N; jc += NC) {
      const int64_t nc = min64(NC, N - jc), panels = ceil_div(nc, NR);
      for (int64_t q = 0; q < npc; ++q) {
        if (!direct_b || nc % NR != 0) run_chunks(nt, panels, [&](int64_t jr) { pack_panel(jc, q * KC, jr); });
        run_chunks(nt, blocks, [&](int64_t k) { block(jc, q * KC, k, 0, panels); });
      }
    }
  }
};

template <int MR, int NV, bool kTransC>
void gemm_with(const GemmParams& p) {
  const double flops = 2.0 * double(p.M) * double(p.N) * double(p.K);
  int nt = max_threads();
  if (flops < kParallelFlops) nt = 1;
  constexpr int NR = NV * Vec::W;
  const int64_t tiles = ceil_div(p.M, MR) * ceil_div(p.N, NR);  // threads never split K
  if (tiles < nt) nt = int(tiles);
  Driver<MR, NV, kTransC>(p, nt).run(nt);
}

}  // namespace gemm_detail

void gemm(const GemmParams& p) {
  using namespace gemm_detail;
  if (p.M <= 0 || p.N <= 0) return;
  // Narrow C (N within one C^T tile, many rows): a tile row of one vector would leave most lanes
  // idle, so compute C^T = op(B)^T op(A)^T (rows of C become vector lanes), unless op(A) is
  // row-major (its columns would then need a transposing pack that costs more than it saves).
  if (p.N <= kAltMR && p.M >= kMainNV * Vec::W && p.csa != 1) {
    GemmParams t = p;
    t.M = p.N; t.N = p.M;
    t.A = p.B; t.rsa = p.csb; t.csa = p.rsb;
    t.B = p.A; t.rsb = p.csa; t.csb = p.rsa;
    gemm_with<kAltMR, kMainNV, true>(t);
  } else if (p.M <= kMainMR / 2 && p.N > Vec::W) {
    // A few rows (batch-1 inference): a main tile would multiply kMainMR rows for each real one;
    // tiles of exactly 1, 2 or 4 rows, kSmallNV vectors wide, keep the FMAs useful.
    if (p.M == 1)
      gemm_with<1, kSmallNV, false>(p);
    else if (p.M == 2)
      gemm_with<2, kSmallNV, false>(p);
    else
      gemm_with<4, kSmallNV, false>(p);
  } else if (p.N <= Vec::W) {  // narrow C: a taller tile of one vector per row
    gemm_with<kNarrowMR, kNarrowNV, false>(p);
  } else if (kAltMR != kMainMR && ceil_div(p.M, kAltMR) * kAltMR < ceil_div(p.M, kMainMR) * kMainMR) {
    gemm_with<kAltMR, kMainNV, false>(p);  // the taller tile pads fewer rows of C
  } else {
    gemm_with<kMainMR, kMainNV, false>(p);
  }
}

void fill_gemm(GemmOps& t) { t.gemm = gemm; }
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
