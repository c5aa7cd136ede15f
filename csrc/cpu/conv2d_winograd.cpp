// Winograd F(2x2, 3x3) convolution, NHWC, see conv2d_winograd.h.
//
// Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A for each 4x4 input patch d -> 2x2 output tile (correlation, as
// Keras convolves). Per call the kernel is transformed once: U[ξ] (Ci, CoP), ξ = 4r + s over the
// 16 transformed positions, output channels zero-padded to whole micro-kernel panels (CoP). The
// output tiles (b, th, tw) are cut into blocks of T tiles, one block at a time per thread, all in
// this thread's scratch (sized to stay in L2):
//   1. V[ξ] (T, Ci) = Bᵀ d B of each tile's patch (zeros outside the image), vectors along channels;
//   2. M[ξ] (T, CoP) = V[ξ] · U[ξ]: 16 small GEMMs on the GEMM micro-kernel (A read in place);
//   3. each tile's 2x2 outputs = Aᵀ M A (+ bias, relu), stored (or added) where inside the output.
// Every output element is computed by one thread in a fixed order: bit-identical for any thread count.
#include "cpu/conv2d_winograd.h"

#include <algorithm>
#include <initializer_list>

#include "cpu/gemm/microkernel.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace winograd {
namespace {
using gemm_detail::Vec;
using V = Vec::T;
constexpr int MR = gemm_detail::kMainMR, NV = gemm_detail::kMainNV, NR = NV * Vec::W;
constexpr int kUSlot = 4;                    // calling thread: the transformed kernel
constexpr int kSumSlot = 5;                  // calling thread: dkernel's per-chunk sums S
constexpr int64_t kMaxChunks = 8;            // dkernel: fixed chunks of blocks, summed in order ...
constexpr int64_t kSumFloats = 8 << 20;      // ... whose sums S take at most 32 MB
constexpr int kBlockSlot = 0;                // per thread: V and M of one block of tiles
constexpr int64_t kBlockFloats = 96 * 1024;  // 384 KB of V + M per block: L2 next to U

// One 3x3 stride-1 convolution in the input's terms: in (B, H, W, Ci) -> out (B, OH, OW, Co).
struct Job {
  const float* in;
  int64_t B, H, W, Ci, pad_top, pad_left;
  float* out;
  int64_t OH, OW, Co;
  const float* U;  // (16, Ci, CoP)
  int64_t CoP;
  const float* bias;
  int act;
};

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Output tiles of 2x2 pixels, numbered t = (b * TH + th) * TW + tw.
inline int64_t num_tiles(const Job& j) { return j.B * ((j.OH + 1) / 2) * ((j.OW + 1) / 2); }
struct Tile {
  int64_t b, th, tw;
};
inline Tile tile_at(const Job& j, int64_t t) {
  const int64_t TH = (j.OH + 1) / 2, TW = (j.OW + 1) / 2;
  return {t / (TW * TH), t / TW % TH, t % TW};
}

// The first m (1..W) lanes at p (the others load as 0 / are not stored); p == nullptr loads zeros.
inline V load_m(const float* p, int m) { return !p ? Vec::zero() : m == Vec::W ? Vec::load(p) : Vec::load_n(p, m); }
inline void store_m(float* p, V v, int m) {
  if (m == Vec::W) Vec::store(p, v);
  else Vec::store_n(p, v, m);
}

// U[ξ][ci][co] = (G g Gᵀ)[r][s] for the 3x3 filter g(kh, kw) = tap(kh, kw, ci, co); co >= Co is 0.
// G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]].
template <class Tap>
float* transform_kernel(int64_t Ci, int64_t Co, int64_t CoP, const Tap& tap) {
  float* U = scratch(kUSlot, size_t(16 * Ci * CoP));
  parallel_for(0, Ci, 8, [&](int64_t c0, int64_t c1) {
    for (int64_t ci = c0; ci < c1; ++ci)
      for (int64_t co = 0; co < CoP; ++co) {
        float g[3][3], t[4][3];
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw) g[kh][kw] = co < Co ? tap(kh, kw, ci, co) : 0.0f;
        for (int kw = 0; kw < 3; ++kw) {
          t[0][kw] = g[0][kw];
          t[1][kw] = 0.5f * (g[0][kw] + g[1][kw] + g[2][kw]);
          t[2][kw] = 0.5f * (g[0][kw] - g[1][kw] + g[2][kw]);
          t[3][kw] = g[2][kw];
        }
        for (int r = 0; r < 4; ++r) {
          const float u[4] = {t[r][0], 0.5f * (t[r][0] + t[r][1] + t[r][2]), 0.5f * (t[r][0] - t[r][1] + t[r][2]),
                              t[r][2]};
          for (int s = 0; s < 4; ++s) U[((r * 4 + s) * Ci + ci) * CoP + co] = u[s];
        }
      }
  });
  return U;
}

// Bᵀ d B for the tiles [t0, t0 + n) -> V (16, T, Ci). F(2x2, 3x3): Bᵀ = [[1,0,-1,0], [0,1,1,0],
// [0,-1,1,0], [0,1,0,-1]]; F(3x3, 2x2) (kF32, for dkernel) has the last row negated.
template <bool kF32 = false>
void input_transform(const Job& j, int64_t t0, int64_t n, int64_t T, float* Vb) {
  const int64_t Ci = j.Ci;
  for (int64_t i = 0; i < n; ++i) {
    const auto [b, th, tw] = tile_at(j, t0 + i);
    const int64_t ih0 = 2 * th - j.pad_top, iw0 = 2 * tw - j.pad_left;
    const float* src[4][4];  // nullptr: padding
    for (int r = 0; r < 4; ++r)
      for (int s = 0; s < 4; ++s) {
        const int64_t ih = ih0 + r, iw = iw0 + s;
        src[r][s] = ih >= 0 && ih < j.H && iw >= 0 && iw < j.W ? j.in + ((b * j.H + ih) * j.W + iw) * Ci : nullptr;
      }
    float* dst = Vb + i * Ci;
    for (int64_t c = 0; c < Ci; c += Vec::W) {
      const int m = int(std::min<int64_t>(Vec::W, Ci - c));
      V d[4][4], u[4][4];
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s) d[r][s] = load_m(src[r][s] ? src[r][s] + c : nullptr, m);
      for (int s = 0; s < 4; ++s) {
        u[0][s] = Vec::sub(d[0][s], d[2][s]);
        u[1][s] = Vec::add(d[1][s], d[2][s]);
        u[2][s] = Vec::sub(d[2][s], d[1][s]);
        u[3][s] = kF32 ? Vec::sub(d[3][s], d[1][s]) : Vec::sub(d[1][s], d[3][s]);
      }
      for (int r = 0; r < 4; ++r) {
        const V v[4] = {Vec::sub(u[r][0], u[r][2]), Vec::add(u[r][1], u[r][2]), Vec::sub(u[r][2], u[r][1]),
                        kF32 ? Vec::sub(u[r][3], u[r][1]) : Vec::sub(u[r][1], u[r][3])};
        for (int s = 0; s < 4; ++s) store_m(dst + (r * 4 + s) * T * Ci + c, v[s], m);
      }
    }
  }
}

// Aᵀ M A of the tiles [t0, t0 + n) from M (16, T, CoP) -> out. Aᵀ = [[1,1,1,0], [0,1,-1,-1]].
void output_transform(const Job& j, int64_t t0, int64_t n, int64_t T, const float* Mb) {
  const int64_t Co = j.Co, CoP = j.CoP;
  for (int64_t i = 0; i < n; ++i) {
    const auto [b, th, tw] = tile_at(j, t0 + i);
    const int rows = int(std::min<int64_t>(2, j.OH - 2 * th)), cols = int(std::min<int64_t>(2, j.OW - 2 * tw));
    const float* src = Mb + i * CoP;
    float* dst = j.out + ((b * j.OH + 2 * th) * j.OW + 2 * tw) * Co;
    for (int64_t c = 0; c < Co; c += Vec::W) {
      const int m = int(std::min<int64_t>(Vec::W, Co - c));
      V q[4][2];  // Aᵀ applied to the rows: q[s][0] = m0s + m1s + m2s, q[s][1] = m1s - m2s - m3s
      for (int s = 0; s < 4; ++s) {
        const V m0 = Vec::load(src + (0 * 4 + s) * T * CoP + c), m1 = Vec::load(src + (1 * 4 + s) * T * CoP + c);
        const V m2 = Vec::load(src + (2 * 4 + s) * T * CoP + c), m3 = Vec::load(src + (3 * 4 + s) * T * CoP + c);
        const V s12 = Vec::add(m1, m2), d12 = Vec::sub(m1, m2);
        q[s][0] = Vec::add(m0, s12);
        q[s][1] = Vec::sub(d12, m3);
      }
      const V bv = load_m(j.bias ? j.bias + c : nullptr, m);
      for (int y = 0; y < rows; ++y) {
        const V s12 = Vec::add(q[1][y], q[2][y]), d12 = Vec::sub(q[1][y], q[2][y]);
        const V out[2] = {Vec::add(q[0][y], s12), Vec::sub(d12, q[3][y])};
        for (int x = 0; x < cols; ++x) {
          float* o = dst + (y * j.OW + x) * Co + c;
          V v = Vec::add(out[x], bv);
          if (j.act == kActRelu) v = Vec::relu(v);
          store_m(o, v, m);
        }
      }
    }
  }
}

void run(const Job& j) {
  const int64_t ntiles = num_tiles(j);
  // T: a multiple of MR (whole register tiles; V's rows past the block's last tile are read but unused)
  const int64_t T = std::max<int64_t>(MR, std::min<int64_t>(kBlockFloats / (16 * (j.Ci + j.CoP)) / MR * MR, 32 * MR));
  const int64_t nblk = (ntiles + T - 1) / T;
  const gemm_detail::Epilogue e{1.0f, 0.0f, kActNone};
  parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
    float* Vb = scratch(kBlockSlot, size_t(16 * T * (j.Ci + j.CoP)));
    float* Mb = Vb + 16 * T * j.Ci;
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t t0 = blk * T, n = std::min(T, ntiles - t0);
      input_transform(j, t0, n, T, Vb);
      for (int xi = 0; xi < 16; ++xi) {
        const float* a = Vb + xi * T * j.Ci;
        const float* u = j.U + xi * j.Ci * j.CoP;
        float* m = Mb + xi * T * j.CoP;
        for (int64_t i = 0; i < n; i += MR)
          for (int64_t c = 0; c < j.CoP; c += NR)
            gemm_detail::microkernel<MR, NV, true, false>(j.Ci, a + i * j.Ci, j.Ci, u + c, j.CoP, m + i * j.CoP + c,
                                                          j.CoP, int(std::min<int64_t>(MR, n - i)), NR, nullptr, e);
      }
      output_transform(j, t0, n, T, Mb);
    }
  });
}
}  // namespace

// ---- dkernel: F(3x3, 2x2) ---------------------------------------------------------------------------
// dkernel[kh][kw] = sum over output pixels of x[oh + kh - pt][ow + kw - pl] * dout[oh][ow]: for each
// 2x2 tile of dout (zeros outside) and the same 4x4 patch of x as the forward's, a 3x3 correlation
// = Aᵀ [(G dy Gᵀ) ⊙ (Bᵀ x B)] A with G = [[1,0], [1/2,1/2], [1/2,-1/2], [0,1]], Aᵀ = [[1,1,1,0],
// [0,1,-1,0], [0,1,1,1]]. Summed over tiles in the transformed domain, that is 16 GEMMs
// S[ξ] (C, OCP) += X[ξ]ᵀ (C, T) · D[ξ] (T, OCP) per block; the 3x3 output transform runs once.

// G dy Gᵀ for the tiles [t0, t0 + n) of dout (B, OH, OW, OC) -> D (16, T, OCP), zeros past OC.
void grad_transform(const float* dout, const Job& j, int64_t t0, int64_t n, int64_t T, float* Db) {
  const int64_t OC = j.Co, OCP = j.CoP;
  for (int64_t i = 0; i < n; ++i) {
    const auto [b, th, tw] = tile_at(j, t0 + i);
    const float* src[2][2];
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 2; ++x)
        src[y][x] = 2 * th + y < j.OH && 2 * tw + x < j.OW ? dout + ((b * j.OH + 2 * th + y) * j.OW + 2 * tw + x) * OC
                                                            : nullptr;
    for (int64_t c = 0; c < OCP; c += Vec::W) {
      const int m = int(std::min<int64_t>(Vec::W, OC - c));  // <= 0: padding lanes only
      V g[2][2], h[4][2];
      for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 2; ++x) g[y][x] = load_m(src[y][x] && m > 0 ? src[y][x] + c : nullptr, m);
      const V half = Vec::set1(0.5f);
      for (int x = 0; x < 2; ++x) {
        h[0][x] = g[0][x];
        h[1][x] = Vec::mul(half, Vec::add(g[0][x], g[1][x]));
        h[2][x] = Vec::mul(half, Vec::sub(g[0][x], g[1][x]));
        h[3][x] = g[1][x];
      }
      for (int r = 0; r < 4; ++r) {
        const V v[4] = {h[r][0], Vec::mul(half, Vec::add(h[r][0], h[r][1])), Vec::mul(half, Vec::sub(h[r][0], h[r][1])),
                        h[r][1]};
        for (int s = 0; s < 4; ++s) Vec::store(Db + ((r * 4 + s) * T + i) * OCP + c, v[s]);
      }
    }
  }
}

bool applies(const Conv2dParams& p, int64_t Ci, int64_t Co) {
  return p.KH == 3 && p.KW == 3 && p.SH == 1 && p.SW == 1 && p.DH == 1 && p.DW == 1 && p.pad_top <= 2 &&
         p.pad_left <= 2 && Ci >= 8 && Co >= 16;
}

bool weight_grad_applies(const Conv2dParams& p) {
  // at least two chunks of sums within kSumFloats, so that two threads share the work
  return applies(p, p.C, p.OC) && 2 * 16 * round_up(p.C, MR) * round_up(p.OC, NR) <= kSumFloats;
}

void forward(float* out, const float* x, const float* kernel, const float* bias, int act, const Conv2dParams& p) {
  const int64_t C = p.C, OC = p.OC, CoP = round_up(OC, NR);
  const float* U = transform_kernel(C, OC, CoP, [&](int kh, int kw, int64_t ci, int64_t co) {
    return kernel[((kh * 3 + kw) * C + ci) * OC + co];
  });
  run(Job{x, p.B, p.H, p.W, C, p.pad_top, p.pad_left, out, p.OH, p.OW, OC, U, CoP, bias, act});
}

// dx[ih][iw][c] = sum over (kh, kw, oc) of dout[ih + pt - kh][iw + pl - kw][oc] * kernel[kh][kw][c][oc]:
// a correlation of dout, padded by 2 - pt on top and 2 - pl on the left, with the filter
// g'(kh', kw', oc, c) = kernel[2 - kh'][2 - kw'][c][oc], producing (H, W).
void input_grad(float* dx, const float* dout, const float* kernel, const Conv2dParams& p) {
  const int64_t C = p.C, OC = p.OC, CoP = round_up(C, NR);
  const float* U = transform_kernel(OC, C, CoP, [&](int kh, int kw, int64_t oc, int64_t c) {
    return kernel[(((2 - kh) * 3 + (2 - kw)) * C + c) * OC + oc];
  });
  run(Job{dout, p.B, p.OH, p.OW, OC, 2 - p.pad_top, 2 - p.pad_left, dx, p.H, p.W, C, U, CoP, nullptr, kActNone});
}

// dkernel = the kernel gradient of conv(x, kernel) for dout (B, OH, OW, OC).
void weight_grad(float* dkernel, const float* dout, const float* x, const Conv2dParams& p) {
  const int64_t C = p.C, OC = p.OC, OCP = round_up(OC, NR), CP = round_up(C, MR);
  const Job j{x, p.B, p.H, p.W, C, p.pad_top, p.pad_left, nullptr, p.OH, p.OW, OC, nullptr, OCP, nullptr, kActNone};
  const int64_t ntiles = num_tiles(j);
  const int64_t T = std::max<int64_t>(MR, std::min<int64_t>(kBlockFloats / (16 * (C + OCP)), 512));
  const int64_t per = 16 * CP * OCP, nblk = (ntiles + T - 1) / T;
  const int64_t nch = std::max<int64_t>(1, std::min({nblk, kMaxChunks, kSumFloats / per}));
  float* S = scratch(kSumSlot, size_t(nch * per));
  parallel_for(0, nch, 1, [&](int64_t c0, int64_t c1) {
    // X (16, T, C) then D (16, T, OCP); X's column reads run up to MR - 1 floats past its end (into D)
    float* Xb = scratch(kBlockSlot, size_t(16 * T * (C + OCP)));
    float* Db = Xb + 16 * T * C;
    for (int64_t ch = c0; ch < c1; ++ch) {
      float* Sc = S + ch * per;
      for (int64_t blk = ch * nblk / nch; blk < (ch + 1) * nblk / nch; ++blk) {
        const int64_t t0 = blk * T, n = std::min(T, ntiles - t0);
        input_transform<true>(j, t0, n, T, Xb);
        grad_transform(dout, j, t0, n, T, Db);
        const gemm_detail::Epilogue e{1.0f, blk == ch * nblk / nch ? 0.0f : 1.0f, kActNone};
        for (int xi = 0; xi < 16; ++xi)
          for (int64_t i = 0; i < C; i += MR)  // S rows are input channels: A = Xᵀ, column-major in X
            for (int64_t c = 0; c < OCP; c += NR)
              gemm_detail::microkernel<MR, NV, false, false>(n, Xb + xi * T * C + i, C, Db + xi * T * OCP + c, OCP,
                                                             Sc + (xi * CP + i) * OCP + c, OCP,
                                                             int(std::min<int64_t>(MR, C - i)), NR, nullptr, e);
      }
    }
  });
  // Fixed-order sum of the chunks, then Aᵀ S A per (c, oc): parallel over input channels.
  parallel_for(0, C, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t ci = i0; ci < i1; ++ci)
      for (int64_t oc = 0; oc < OC; ++oc) {
        float m[4][4], q[3][4];
        for (int xi = 0; xi < 16; ++xi) {
          float v = 0.0f;
          for (int64_t ch = 0; ch < nch; ++ch) v += S[ch * per + (xi * CP + ci) * OCP + oc];
          m[xi / 4][xi % 4] = v;
        }
        for (int s = 0; s < 4; ++s) {
          q[0][s] = m[0][s] + m[1][s] + m[2][s];
          q[1][s] = m[1][s] - m[2][s];
          q[2][s] = m[1][s] + m[2][s] + m[3][s];
        }
        for (int kh = 0; kh < 3; ++kh) {
          const float y[3] = {q[kh][0] + q[kh][1] + q[kh][2], q[kh][1] - q[kh][2], q[kh][1] + q[kh][2] + q[kh][3]};
          for (int kw = 0; kw < 3; ++kw) dkernel[((kh * 3 + kw) * C + ci) * OC + oc] = y[kw];
        }
      }
  });
}

}  // namespace winograd
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
