// Convolution as GEMM (NHWC x HWIO), forward and backward.
//
// The im2col matrix has one row per output pixel m = (b*OH + oh)*OW + ow and K = KH*KW*C columns in
// kernel order (kh, kw, c), so the HWIO kernel is already its (K, OC) right-hand side and the output
// rows are the GEMM's C rows: out = col · kernel. Rows are processed in fixed blocks of MB rows
// (per-thread scratch, sized to stay in L2); each thread runs serial GEMMs on whole blocks.
// Pointwise convolutions (1x1, stride 1, no padding) use x itself as the col matrix: no copy.
// Backward (writes its gradients): dkernel = colᵀ · dout summed over fixed chunks of blocks in chunk
// order (bit-identical for any thread count); dbias = column sums of dout, same chunks;
// dx = col2im(dout · kernelᵀ), one image per thread, each image zeroed just before its scatter. Convolutions with few taps (K <= small::kSmallK) replace the GEMM calls by the
// register-tiled loops of conv2d_small.h on the same blocks. 3x3 stride-1 layers with enough channels
// run forward and dx as Winograd F(2x2, 3x3) and dkernel as F(3x3, 2x2) (conv2d_winograd.cpp: 2.25x
// fewer multiply-adds).
#include <algorithm>

#include "cpu/conv2d_small.h"
#include "cpu/conv2d_winograd.h"
#include "cpu/gemm/gemm.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
constexpr int kColSlot = 0;      // per-thread im2col / dcol block
constexpr int kPartialSlot = 1;  // calling thread only: per-chunk dkernel/dbias partial sums
constexpr int kTableSlot = 2;    // calling thread only: SmallTables, or kernelᵀ for dx
constexpr int kRowsSlot = 3;     // per-thread: the small path's row pointers
constexpr int64_t kColBlockFloats = 128 * 1024;  // 512 KB of col per block: fits L2 next to the packs
constexpr int64_t kMaxChunks = 8;                // dkernel partials (thread-count independent) ...
constexpr int64_t kPartialFloats = 8 << 20;      // ... and at most 32 MB of them for huge kernels

struct Geometry {
  int64_t M, K;   // col is (M, K): M = B*OH*OW output pixels, K = KH*KW*C taps
  int64_t MB;     // rows per block
  bool pointwise; // col == x
  bool small;     // few taps: conv2d_small.h instead of GEMM
};

Geometry geometry(const Conv2dParams& p) {
  Geometry g;
  g.M = p.B * p.OH * p.OW;
  g.K = p.KH * p.KW * p.C;
  // A multiple of 48 rows: whole register tiles (MR = 6, 12 or 24) in every block but the last.
  g.MB = std::min<int64_t>(std::max<int64_t>(kColBlockFloats / g.K / 48 * 48, 48), 2016);
  g.pointwise = p.KH == 1 && p.KW == 1 && p.SH == 1 && p.SW == 1 && p.pad_top == 0 && p.pad_left == 0;
  g.small = !g.pointwise && g.K <= small::kSmallK && p.OC % small::kVec == 0;
  return g;
}

// Walks rows [m0, m1) of the col matrix. For each row and each kernel row kh whose input row is inside
// the image, calls f(row, kh, x_offset, kw0, kw1): taps kw in [kw0, kw1) read x cells starting at
// x_offset (element index of tap kw0) with stride DW*C; other taps of the row are padding.
template <class F>
void for_taps(const Conv2dParams& p, int64_t m0, int64_t m1, const F& f) {
  int64_t ow = m0 % p.OW, t = m0 / p.OW, oh = t % p.OH, b = t / p.OH;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t ih0 = oh * p.SH - p.pad_top, iw0 = ow * p.SW - p.pad_left;
    // valid kw: 0 <= iw0 + kw*DW < W
    const int64_t kw0 = iw0 >= 0 ? 0 : (-iw0 + p.DW - 1) / p.DW;
    const int64_t kw1 = std::min<int64_t>(p.KW, iw0 < p.W ? (p.W - 1 - iw0) / p.DW + 1 : 0);
    for (int64_t kh = 0; kh < p.KH; ++kh) {
      const int64_t ih = ih0 + kh * p.DH;
      if (ih >= 0 && ih < p.H) f(m - m0, kh, ((b * p.H + ih) * p.W + iw0 + kw0 * p.DW) * p.C, kw0, std::max(kw0, kw1));
      else f(m - m0, kh, int64_t(0), int64_t(0), int64_t(0));
    }
    if (++ow == p.OW) {
      ow = 0;
      if (++oh == p.OH) { oh = 0; ++b; }
    }
  }
}

// Calls f(r, interior, x_offset) for rows [m0, m1): interior rows (every tap inside the image) have
// their first tap (kh = kw = c = 0) at element x_offset of x.
template <class F>
void for_rows(const Conv2dParams& p, int64_t m0, int64_t m1, const F& f) {
  int64_t ow = m0 % p.OW, t = m0 / p.OW, oh = t % p.OH, b = t / p.OH;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t ih0 = oh * p.SH - p.pad_top, iw0 = ow * p.SW - p.pad_left;
    const bool interior = ih0 >= 0 && ih0 + (p.KH - 1) * p.DH < p.H && iw0 >= 0 && iw0 + (p.KW - 1) * p.DW < p.W;
    f(m - m0, interior, interior ? ((b * p.H + ih0) * p.W + iw0) * p.C : int64_t(0));
    if (++ow == p.OW) {
      ow = 0;
      if (++oh == p.OH) { oh = 0; ++b; }
    }
  }
}

// col (m1-m0, K) = rows [m0, m1) of im2col(x), zeros for padding taps.
void im2col(float* col, const float* x, const Conv2dParams& p, int64_t m0, int64_t m1, int64_t K) {
  const int64_t C = p.C, rowlen = p.KW * C;
  for_taps(p, m0, m1, [&](int64_t r, int64_t kh, int64_t xo, int64_t kw0, int64_t kw1) {
    float* dst = col + r * K + kh * rowlen;
    std::fill(dst, dst + kw0 * C, 0.0f);
    if (p.DW == 1) {
      std::copy(x + xo, x + xo + (kw1 - kw0) * C, dst + kw0 * C);  // the taps are contiguous in x
    } else {
      for (int64_t kw = kw0; kw < kw1; ++kw) std::copy(x + xo + (kw - kw0) * p.DW * C, x + xo + ((kw - kw0) * p.DW + 1) * C, dst + kw * C);
    }
    std::fill(dst + kw1 * C, dst + rowlen, 0.0f);
  });
}

// dx += col2im(dcol) for rows [m0, m1) (dcol row stride ldd >= K): the adjoint of im2col.
void col2im_add(float* dx, const float* dcol, const Conv2dParams& p, int64_t m0, int64_t m1, int64_t ldd) {
  const int64_t C = p.C;
  for_taps(p, m0, m1, [&](int64_t r, int64_t kh, int64_t xo, int64_t kw0, int64_t kw1) {
    const float* src = dcol + r * ldd + kh * p.KW * C;
    for (int64_t kw = kw0; kw < kw1; ++kw) {
      float* d = dx + xo + (kw - kw0) * p.DW * C;
      const float* s = src + kw * C;
      for (int64_t c = 0; c < C; ++c) d[c] += s[c];
    }
  });
}

// The col rows [m0, m1): x itself for pointwise convolutions, else im2col into this thread's scratch.
const float* col_rows(const float* x, const Conv2dParams& p, const Geometry& g, int64_t m0, int64_t m1) {
  if (g.pointwise) return x + m0 * g.K;
  float* col = scratch(kColSlot, size_t(g.MB * g.K));
  im2col(col, x, p, m0, m1, g.K);
  return col;
}

// Tables of the small path, built once per call by the calling thread: the element offset of each tap
// from an interior row's first tap, the identity (for rows read from their im2col copy) and, for dx,
// kernelᵀ zero-padded to (OC, ldwt).
struct SmallTables {
  const int64_t* tapoff;
  const int64_t* iota;
  const float* wt;
  int64_t ldwt;
};

SmallTables small_tables(const Conv2dParams& p, const Geometry& g, const float* kernel_for_dx) {
  const int64_t K = g.K, KP = small::padded_k(K);
  float* buf = scratch(kTableSlot, size_t(4 * K + (kernel_for_dx ? p.OC * KP : 0)));
  int64_t* tapoff = reinterpret_cast<int64_t*>(buf);  // 2 floats per int64
  int64_t* iota = tapoff + K;
  for (int64_t kh = 0, t = 0; kh < p.KH; ++kh)
    for (int64_t kw = 0; kw < p.KW; ++kw)
      for (int64_t c = 0; c < p.C; ++c, ++t) {
        tapoff[t] = (kh * p.DH * p.W + kw * p.DW) * p.C + c;
        iota[t] = t;
      }
  if (kernel_for_dx) small::transpose_kernel(buf + 4 * K, kernel_for_dx, K, p.OC);
  return {tapoff, iota, buf + 4 * K, KP};
}

// Row sources of rows [m0, m1) for the small path: interior rows read x in place, the others are
// im2col'ed into col (this thread's scratch).
small::Rows small_rows(const float* x, const Conv2dParams& p, const Geometry& g, const SmallTables& st, int64_t m0,
                       int64_t m1) {
  const int64_t n = m1 - m0;
  float* col = scratch(kColSlot, size_t(g.MB * g.K));
  const float** src = reinterpret_cast<const float**>(scratch(kRowsSlot, size_t(4 * n)));  // 2 pointers per row
  const int64_t** off = reinterpret_cast<const int64_t**>(src + n);
  for_rows(p, m0, m1, [&](int64_t r, bool interior, int64_t xo) {
    if (interior) {
      src[r] = x + xo;
      off[r] = st.tapoff;
    } else {
      im2col(col + r * g.K, x, p, m0 + r, m0 + r + 1, g.K);
      src[r] = col + r * g.K;
      off[r] = st.iota;
    }
  });
  return {src, off};
}

// x (B,H,W,C), kernel (KH,KW,C,OC), bias (OC,) or null -> out (B,OH,OW,OC), then act.
void conv2d_forward(float* out, const float* x, const float* kernel, const float* bias, int act,
                    const Conv2dParams& p) {
  const Geometry g = geometry(p);
  if (!g.small && winograd::applies(p, p.C, p.OC)) return winograd::forward(out, x, kernel, bias, act, p);
  const int64_t N = p.OC;
  GemmParams q{};
  q.N = N; q.K = g.K; q.alpha = 1.0f; q.rsa = g.K; q.csa = 1;
  q.B = kernel; q.rsb = N; q.csb = 1; q.beta = 0.0f; q.ldc = N; q.bias = bias; q.act = act;
  if (g.pointwise) {  // one GEMM over every pixel, threaded inside
    q.M = g.M; q.A = x; q.C = out;
    gemm(q);
    return;
  }
  const int64_t nblk = (g.M + g.MB - 1) / g.MB;
  const SmallTables st = g.small ? small_tables(p, g, nullptr) : SmallTables{};
  parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t m0 = blk * g.MB, m1 = std::min(g.M, m0 + g.MB);
      if (g.small) {
        small::forward(out + m0 * N, small_rows(x, p, g, st, m0, m1), kernel, bias, act == kActRelu, m1 - m0, g.K, N);
        continue;
      }
      GemmParams r = q;
      r.M = m1 - m0; r.A = col_rows(x, p, g, m0, m1); r.C = out + m0 * N;
      gemm(r);
    }
  });
}

// dkernel = colᵀ · dout, dbias = column sums of dout (either may be null).
void weight_grads(float* dkernel, float* dbias, const float* dout, const float* x, const Conv2dParams& p, const Geometry& g) {
  const int64_t N = p.OC, KN = g.K * N;
  const int64_t stride = KN + N;  // one chunk's partials: dkernel (K, N) then dbias (N,)
  const int64_t nblk = (g.M + g.MB - 1) / g.MB;
  const int64_t nch = std::max<int64_t>(1, std::min({nblk, kMaxChunks, kPartialFloats / stride}));
  float* part = scratch(kPartialSlot, size_t(nch * stride));
  const SmallTables st = g.small ? small_tables(p, g, nullptr) : SmallTables{};
  parallel_for(0, nch, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      float* pk = part + ch * stride;
      float* pb = pk + KN;
      std::fill(pb, pb + N, 0.0f);
      for (int64_t blk = ch * nblk / nch; blk < (ch + 1) * nblk / nch; ++blk) {
        const int64_t m0 = blk * g.MB, m1 = std::min(g.M, m0 + g.MB);
        const float* dy = dout + m0 * N;
        const bool first = blk == ch * nblk / nch;
        if (dkernel && g.small) {
          small::weight_grad(pk, small_rows(x, p, g, st, m0, m1), dy, m1 - m0, g.K, N, !first);
        } else if (dkernel) {
          GemmParams q{};
          q.M = g.K; q.N = N; q.K = m1 - m0; q.alpha = 1.0f;
          q.A = col_rows(x, p, g, m0, m1); q.rsa = 1; q.csa = g.K;  // colᵀ
          q.B = dy; q.rsb = N; q.csb = 1;
          q.beta = first ? 0.0f : 1.0f; q.C = pk; q.ldc = N;
          gemm(q);
        }
        if (dbias) small::colsum(pb, dy, m1 - m0, N);
      }
    }
  });
  // Fixed-order sum of the chunk partials, parallel over elements.
  const auto reduce = [&](float* dst, int64_t off, int64_t n) {
    parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) {
      std::copy(part + off + i0, part + off + i1, dst + i0);
      for (int64_t ch = 1; ch < nch; ++ch) {
        const float* src = part + ch * stride + off;
        for (int64_t i = i0; i < i1; ++i) dst[i] += src[i];
      }
    });
  };
  if (dkernel) reduce(dkernel, 0, KN);
  if (dbias) reduce(dbias, KN, N);
}

// dx = col2im(dout · kernelᵀ); one image per thread so col2im's overlapping adds never race.
void input_grad(float* dx, const float* dout, const float* kernel, const Conv2dParams& p, const Geometry& g) {
  const int64_t N = p.OC;
  GemmParams q{};
  q.N = g.K; q.K = N; q.alpha = 1.0f; q.rsa = N; q.csa = 1;
  q.act = kActNone;
  if (!g.small) {  // op(B) = kernelᵀ, transposed once here: GEMM then packs it by rows in every block
    float* kt = scratch(kTableSlot, size_t(g.K * N));
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t oc = 0; oc < N; ++oc) kt[oc * g.K + k] = kernel[k * N + oc];
    q.B = kt; q.rsb = g.K; q.csb = 1;
  }
  if (g.pointwise) {  // dx (B*H*W, C) = dout · kernelᵀ, no col2im
    q.M = g.M; q.A = dout; q.beta = 0.0f; q.C = dx; q.ldc = p.C;
    gemm(q);
    return;
  }
  const int64_t per_img = p.OH * p.OW, img = p.H * p.W * p.C, ldd = g.small ? small::padded_k(g.K) : g.K;
  const SmallTables st = g.small ? small_tables(p, g, kernel) : SmallTables{};
  parallel_for(0, p.B, 1, [&](int64_t i0, int64_t i1) {
    float* dcol = scratch(kColSlot, size_t(g.MB * ldd));
    for (int64_t m0 = i0 * per_img, m1; m0 < i1 * per_img; m0 = m1) {
      m1 = std::min(m0 + g.MB, (m0 / per_img + 1) * per_img);  // blocks never span images
      if (m0 % per_img == 0) std::fill(dx + m0 / per_img * img, dx + (m0 / per_img + 1) * img, 0.0f);
      if (g.small) {  // interior rows scatter through the tap offsets, the others through col2im
        small::input_grad(dcol, dout + m0 * N, st.wt, m1 - m0, g.K, N);
        for_rows(p, m0, m1, [&](int64_t r, bool interior, int64_t xo) {
          const float* s = dcol + r * ldd;
          if (!interior) return col2im_add(dx, s, p, m0 + r, m0 + r + 1, ldd);
          for (int64_t t = 0; t < g.K; ++t) dx[xo + st.tapoff[t]] += s[t];
        });
        continue;
      }
      GemmParams r = q;
      r.M = m1 - m0; r.A = dout + m0 * N; r.beta = 0.0f; r.C = dcol; r.ldc = g.K;
      gemm(r);
      col2im_add(dx, dcol, p, m0, m1, ldd);
    }
  });
}

void conv2d_backward(float* dx, float* dkernel, float* dbias, const float* dout, const float* x, const float* kernel,
                     const Conv2dParams& p) {
  const Geometry g = geometry(p);
  if (dkernel && !g.small && winograd::weight_grad_applies(p)) {
    winograd::weight_grad(dkernel, dout, x, p);
    if (dbias) weight_grads(nullptr, dbias, dout, x, p, g);
  } else if (dkernel || dbias) {
    weight_grads(dkernel, dbias, dout, x, p, g);
  }
  if (dx && !g.small && winograd::applies(p, p.OC, p.C)) winograd::input_grad(dx, dout, kernel, p);
  else if (dx) input_grad(dx, dout, kernel, p, g);
}
}  // namespace

void fill_conv(ConvOps& t) {
  t.conv2d_forward = conv2d_forward;
  t.conv2d_backward = conv2d_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
