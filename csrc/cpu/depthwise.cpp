// Depthwise convolution, NHWC: every tap is a contiguous run of C channels times a contiguous kernel row,
// so the inner loops are plain vectorised loops over channels (a block of kCB accumulators held across
// the taps). Threads split output rows (b, oh) in forward and input rows (b, ih) in the dx pass (a gather:
// each dx element is written by one thread); dkernel/dbias sum per fixed chunk of output rows, then the
// chunks in order, so results do not depend on the thread count.
#include <algorithm>
#include <cstring>

#include "cpu/vmath.h"
#include "fastnn.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
constexpr int64_t kCB = 64;            // channels accumulated in registers across the taps
constexpr int64_t kGrain = 16384;      // multiply-adds per thread below which a loop stays serial
constexpr int64_t kMaxChunks = 64;     // dkernel partials: at most this many row chunks
constexpr int kPartialSlot = 0, kFlipSlot = 1;
constexpr int kMaxTaps = 64;           // windows with more taps take the generic loops

using vm::vf;
using vm::W;

// Calls f(offset of x[b, ih, iw, 0], tap kh*KW + kw) for the taps of output (b, oh, ow) inside the image.
template <class F>
inline void for_taps(const Conv2dParams& p, int64_t b, int64_t oh, int64_t ow, const F& f) {
  const int64_t ih0 = oh * p.SH - p.pad_top, iw0 = ow * p.SW - p.pad_left;
  for (int64_t kh = 0; kh < p.KH; ++kh) {
    const int64_t ih = ih0 + kh * p.DH;
    if (ih < 0 || ih >= p.H) continue;
    for (int64_t kw = 0; kw < p.KW; ++kw) {
      const int64_t iw = iw0 + kw * p.DW;
      if (iw >= 0 && iw < p.W) f(((b * p.H + ih) * p.W + iw) * p.C, kh * p.KW + kw);
    }
  }
}

// --- marked inner loop (vector extensions): out[0..C) = init + sum_t a[t][0..C) * k[t][0..C) ---------------
// (DM == 1.) The taps' rows are given as pointers; 4 vectors of channels stay in registers across the taps.
inline void tap_sum(float* __restrict out, const float* const* a, const float* const* k, int taps,
                    const float* __restrict init, int64_t C) {
  int64_t c = 0;
  for (; c + 4 * W <= C; c += 4 * W) {
    vf s0 = init ? vm::load<vf>(init + c) : vf{}, s1 = init ? vm::load<vf>(init + c + W) : vf{};
    vf s2 = init ? vm::load<vf>(init + c + 2 * W) : vf{}, s3 = init ? vm::load<vf>(init + c + 3 * W) : vf{};
    for (int t = 0; t < taps; ++t) {
      const float *x = a[t] + c, *w = k[t] + c;
      s0 += vm::load<vf>(x) * vm::load<vf>(w);
      s1 += vm::load<vf>(x + W) * vm::load<vf>(w + W);
      s2 += vm::load<vf>(x + 2 * W) * vm::load<vf>(w + 2 * W);
      s3 += vm::load<vf>(x + 3 * W) * vm::load<vf>(w + 3 * W);
    }
    vm::store(out + c, s0);
    vm::store(out + c + W, s1);
    vm::store(out + c + 2 * W, s2);
    vm::store(out + c + 3 * W, s3);
  }
  for (; c + W <= C; c += W) {
    vf s0 = init ? vm::load<vf>(init + c) : vf{};
    for (int t = 0; t < taps; ++t) s0 += vm::load<vf>(a[t] + c) * vm::load<vf>(k[t] + c);
    vm::store(out + c, s0);
  }
  for (; c < C; ++c) {
    float s0 = init ? init[c] : 0.0f;
    for (int t = 0; t < taps; ++t) s0 += a[t][c] * k[t][c];
    out[c] = s0;
  }
}
// --- end of marked inner loop -----------------------------------------------------------------------

// acc[0..n) += a[0..n) * k[0..n) where a is x's channels (DM == 1), or per channel c and multiplier m:
// acc[c*DM + m] += a[c] * k[c*DM + m] (o0: first output channel of the block).
inline void tap_madd(float* acc, const float* a, const float* k, int64_t o0, int64_t n, int64_t DM) {
  if (DM == 1) {
    for (int64_t j = 0; j < n; ++j) acc[j] += a[o0 + j] * k[j];  // vectorised
  } else {
    for (int64_t j = 0; j < n; ++j) acc[j] += a[(o0 + j) / DM] * k[j];
  }
}

// --- marked inner loop (vector extensions): one output row (b, oh) of a 3x3 depthwise conv, DM == 1 -------
// Channel blocks of W outer; the block's 9 kernel vectors stay in registers while the row's pixels stream by
// (one load per multiply-add). Channels past the last full block go through tap_sum.
inline void row3x3(float* __restrict o, const float* x, const float* kernel, const float* bias, const Conv2dParams& p,
                   int64_t b, int64_t oh) {
  const int64_t C = p.C, ih0 = oh * p.SH - p.pad_top;
  const float* rows[3];
  for (int kh = 0; kh < 3; ++kh) {
    const int64_t ih = ih0 + kh * p.DH;
    rows[kh] = (ih >= 0 && ih < p.H) ? x + (b * p.H + ih) * p.W * C : nullptr;
  }
  int64_t c = 0;
  for (; c + W <= C; c += W) {
    vf k[9];
    for (int t = 0; t < 9; ++t) k[t] = vm::load<vf>(kernel + t * C + c);
    const vf init = bias ? vm::load<vf>(bias + c) : vf{};
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const int64_t iw0 = ow * p.SW - p.pad_left;
      vf s = init;
      if (iw0 >= 0 && iw0 + 2 * p.DW < p.W) {  // interior: every column inside the image
        for (int kh = 0; kh < 3; ++kh) {
          if (!rows[kh]) continue;
          const float* r = rows[kh] + iw0 * C + c;
          s += vm::load<vf>(r) * k[3 * kh] + vm::load<vf>(r + p.DW * C) * k[3 * kh + 1] +
               vm::load<vf>(r + 2 * p.DW * C) * k[3 * kh + 2];
        }
      } else {
        for (int kh = 0; kh < 3; ++kh) {
          if (!rows[kh]) continue;
          for (int kw = 0; kw < 3; ++kw) {
            const int64_t iw = iw0 + kw * p.DW;
            if (iw >= 0 && iw < p.W) s += vm::load<vf>(rows[kh] + iw * C + c) * k[3 * kh + kw];
          }
        }
      }
      vm::store(o + ow * C + c, s);
    }
  }
  if (c == C) return;
  for (int64_t ow = 0; ow < p.OW; ++ow) {  // the ragged channels
    const int64_t iw0 = ow * p.SW - p.pad_left;
    for (int64_t cc = c; cc < C; ++cc) {
      float s = bias ? bias[cc] : 0.0f;
      for (int kh = 0; kh < 3; ++kh) {
        if (!rows[kh]) continue;
        for (int kw = 0; kw < 3; ++kw) {
          const int64_t iw = iw0 + kw * p.DW;
          if (iw >= 0 && iw < p.W) s += rows[kh][iw * C + cc] * kernel[(3 * kh + kw) * C + cc];
        }
      }
      o[ow * C + cc] = s;
    }
  }
}
// --- end of marked inner loop -----------------------------------------------------------------------

void depthwise_conv2d_forward(float* out, const float* x, const float* kernel, const float* bias,
                              const Conv2dParams& p) {
  const int64_t OC = p.OC, DM = OC / p.C;
  const int64_t per_row = std::max<int64_t>(p.OW * p.KH * p.KW * OC, 1);
  parallel_for(0, p.B * p.OH, std::max<int64_t>(kGrain / per_row, 1), [&](int64_t r0, int64_t r1) {
    alignas(64) float acc[kCB];
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / p.OH, oh = r % p.OH;
      if (DM == 1 && p.KH == 3 && p.KW == 3) {
        row3x3(out + r * p.OW * OC, x, kernel, bias, p, b, oh);
        continue;
      }
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        float* o = out + (r * p.OW + ow) * OC;
        if (DM == 1 && p.KH * p.KW <= kMaxTaps) {  // the taps inside the image, then one pass over channels
          const float *a[kMaxTaps], *k[kMaxTaps];
          int taps = 0;
          for_taps(p, b, oh, ow, [&](int64_t xi, int64_t tap) {
            a[taps] = x + xi;
            k[taps++] = kernel + tap * OC;
          });
          tap_sum(o, a, k, taps, bias, OC);
          continue;
        }
        for (int64_t o0 = 0; o0 < OC; o0 += kCB) {
          const int64_t n = std::min(kCB, OC - o0);
          for (int64_t j = 0; j < n; ++j) acc[j] = bias ? bias[o0 + j] : 0.0f;
          for_taps(p, b, oh, ow, [&](int64_t xi, int64_t tap) { tap_madd(acc, x + xi, kernel + tap * OC + o0, o0, n, DM); });
          std::memcpy(o + o0, acc, sizeof(float) * n);
        }
      }
    }
  });
}

// dx[b, ih, iw, c] = sum over the outputs (oh, ow) whose tap (kh, kw) reads (ih, iw), and m, of
// dout[b, oh, ow, c*DM + m] * kernel[kh, kw, c, m].
void depthwise_dx(float* dx, const float* dout, const float* kernel, const Conv2dParams& p) {
  const int64_t C = p.C, OC = p.OC, DM = OC / C;
  if (DM == 1 && p.KH == 3 && p.KW == 3 && p.SH == 1 && p.SW == 1) {
    // stride 1: dx is dout correlated with the flipped kernel, padded by (KH-1)*DH - pad: row3x3 again
    float* flipped = scratch(kFlipSlot, size_t(9 * C));
    for (int t = 0; t < 9; ++t) std::memcpy(flipped + t * C, kernel + (8 - t) * C, sizeof(float) * C);
    Conv2dParams q = p;
    q.H = p.OH; q.W = p.OW; q.OH = p.H; q.OW = p.W;
    q.pad_top = 2 * p.DH - p.pad_top;
    q.pad_left = 2 * p.DW - p.pad_left;
    parallel_for(0, p.B * p.H, std::max<int64_t>(kGrain / std::max<int64_t>(p.W * 9 * C, 1), 1),
                 [&](int64_t r0, int64_t r1) {
                   for (int64_t r = r0; r < r1; ++r) row3x3(dx + r * p.W * C, dout, flipped, nullptr, q, r / p.H, r % p.H);
                 });
    return;
  }
  const int64_t per_row = std::max<int64_t>(p.W * p.KH * p.KW * OC, 1);
  parallel_for(0, p.B * p.H, std::max<int64_t>(kGrain / per_row, 1), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / p.H, ih = r % p.H;
      for (int64_t iw = 0; iw < p.W; ++iw) {
        float* d = dx + (r * p.W + iw) * C;
        if (DM == 1 && p.KH * p.KW <= kMaxTaps) {  // the outputs reading (ih, iw), then one pass over channels
          const float *g[kMaxTaps], *k[kMaxTaps];
          int taps = 0;
          for (int64_t kh = 0; kh < p.KH; ++kh) {
            const int64_t th = ih + p.pad_top - kh * p.DH;
            if (th < 0 || th % p.SH || th / p.SH >= p.OH) continue;
            for (int64_t kw = 0; kw < p.KW; ++kw) {
              const int64_t tw = iw + p.pad_left - kw * p.DW;
              if (tw < 0 || tw % p.SW || tw / p.SW >= p.OW) continue;
              g[taps] = dout + ((b * p.OH + th / p.SH) * p.OW + tw / p.SW) * OC;
              k[taps++] = kernel + (kh * p.KW + kw) * OC;
            }
          }
          tap_sum(d, g, k, taps, nullptr, C);
          continue;
        }
        std::fill(d, d + C, 0.0f);
        for (int64_t kh = 0; kh < p.KH; ++kh) {
          const int64_t th = ih + p.pad_top - kh * p.DH;  // = oh * SH
          if (th < 0 || th % p.SH) continue;
          const int64_t oh = th / p.SH;
          if (oh >= p.OH) continue;
          for (int64_t kw = 0; kw < p.KW; ++kw) {
            const int64_t tw = iw + p.pad_left - kw * p.DW;
            if (tw < 0 || tw % p.SW) continue;
            const int64_t ow = tw / p.SW;
            if (ow >= p.OW) continue;
            const float* g = dout + ((b * p.OH + oh) * p.OW + ow) * OC;
            const float* k = kernel + (kh * p.KW + kw) * OC;
            if (DM == 1) {
              for (int64_t c = 0; c < C; ++c) d[c] += g[c] * k[c];  // vectorised
            } else {
              for (int64_t c = 0; c < C; ++c)
                for (int64_t m = 0; m < DM; ++m) d[c] += g[c * DM + m] * k[c * DM + m];
            }
          }
        }
      }
    }
  });
}

// --- marked inner loop (vector extensions): a chunk of output rows [r0, r1) of a 3x3 depthwise conv's dkernel,
// DM == 1: for each block of W channels, the 9 kernel sums and the bias sum stay in registers (named, so the
// compiler keeps them there) over the chunk, one load per multiply-add; pixels whose window lies inside the image
// take the straight 9-tap path, border pixels add their taps inside the image. pk = the chunk's (9*C kernel,
// C bias) partial sums; ragged channels scalar.
template <class T>
inline void dk3x3_taps(T* acc, const T& g, const float* const* rows, int64_t iw0, int64_t c, const Conv2dParams& p,
                       T (*load)(const float*)) {
  for (int kh = 0; kh < 3; ++kh) {
    if (!rows[kh]) continue;
    for (int kw = 0; kw < 3; ++kw) {
      const int64_t iw = iw0 + kw * p.DW;
      if (iw >= 0 && iw < p.W) acc[3 * kh + kw] += g * load(rows[kh] + iw * p.C + c);
    }
  }
}

inline vf load_vf(const float* a) { return vm::load<vf>(a); }
inline float load_f(const float* a) { return *a; }

inline void dk3x3_chunk(float* pk, const float* dout, const float* x, const Conv2dParams& p, int64_t r0, int64_t r1) {
  const int64_t C = p.C, DWC = p.DW * C;
  int64_t c = 0;
  for (; c + W <= C; c += W) {
    vf k0{}, k1{}, k2{}, k3{}, k4{}, k5{}, k6{}, k7{}, k8{}, bias{};
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / p.OH, oh = r % p.OH, ih0 = oh * p.SH - p.pad_top;
      const float* rows[3];
      for (int kh = 0; kh < 3; ++kh) {
        const int64_t ih = ih0 + kh * p.DH;
        rows[kh] = (ih >= 0 && ih < p.H) ? x + (b * p.H + ih) * p.W * C : nullptr;
      }
      const bool full = rows[0] && rows[1] && rows[2];
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const vf g = vm::load<vf>(dout + (r * p.OW + ow) * C + c);
        const int64_t iw0 = ow * p.SW - p.pad_left;
        bias += g;
        if (full && iw0 >= 0 && iw0 + 2 * p.DW < p.W) {
          const float *q0 = rows[0] + iw0 * C + c, *q1 = rows[1] + iw0 * C + c, *q2 = rows[2] + iw0 * C + c;
          k0 += g * vm::load<vf>(q0);
          k1 += g * vm::load<vf>(q0 + DWC);
          k2 += g * vm::load<vf>(q0 + 2 * DWC);
          k3 += g * vm::load<vf>(q1);
          k4 += g * vm::load<vf>(q1 + DWC);
          k5 += g * vm::load<vf>(q1 + 2 * DWC);
          k6 += g * vm::load<vf>(q2);
          k7 += g * vm::load<vf>(q2 + DWC);
          k8 += g * vm::load<vf>(q2 + 2 * DWC);
        } else {
          vf acc[9] = {k0, k1, k2, k3, k4, k5, k6, k7, k8};
          dk3x3_taps(acc, g, rows, iw0, c, p, load_vf);
          k0 = acc[0], k1 = acc[1], k2 = acc[2], k3 = acc[3], k4 = acc[4], k5 = acc[5], k6 = acc[6], k7 = acc[7],
          k8 = acc[8];
        }
      }
    }
    const vf sums[10] = {k0, k1, k2, k3, k4, k5, k6, k7, k8, bias};
    for (int t = 0; t < 10; ++t) vm::store(pk + t * C + c, sums[t]);
  }
  for (; c < C; ++c) {
    float acc[9] = {}, bias = 0.0f;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / p.OH, oh = r % p.OH, ih0 = oh * p.SH - p.pad_top;
      const float* rows[3];
      for (int kh = 0; kh < 3; ++kh) {
        const int64_t ih = ih0 + kh * p.DH;
        rows[kh] = (ih >= 0 && ih < p.H) ? x + (b * p.H + ih) * p.W * C : nullptr;
      }
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const float g = dout[(r * p.OW + ow) * C + c];
        bias += g;
        dk3x3_taps(acc, g, rows, ow * p.SW - p.pad_left, c, p, load_f);
      }
    }
    for (int t = 0; t < 9; ++t) pk[t * C + c] = acc[t];
    pk[9 * C + c] = bias;
  }
}
// --- end of marked inner loop -----------------------------------------------------------------------

// dkernel (KH,KW,C,DM) and dbias (OC,): partial sums per chunk of `rows` output rows (b, oh) into
// part[chunk] = (KH*KW*OC kernel sums, OC bias sums), then the chunks added in order.
void depthwise_dkernel(float* dkernel, float* dbias, const float* dout, const float* x, const Conv2dParams& p) {
  const int64_t OC = p.OC, DM = OC / p.C, NK = p.KH * p.KW * OC, stride = NK + OC;
  const int64_t R = p.B * p.OH, rows = (R + kMaxChunks - 1) / kMaxChunks, chunks = (R + rows - 1) / rows;
  float* part = scratch(kPartialSlot, size_t(chunks * stride));
  const int64_t per_chunk = std::max<int64_t>(rows * p.OW * NK, 1);
  parallel_for(0, chunks, std::max<int64_t>(kGrain / per_chunk, 1), [&](int64_t k0, int64_t k1) {
    for (int64_t ch = k0; ch < k1; ++ch) {
      float* pk = part + ch * stride;
      float* pb = pk + NK;
      if (DM == 1 && p.KH == 3 && p.KW == 3) {
        dk3x3_chunk(pk, dout, x, p, ch * rows, std::min(R, (ch + 1) * rows));
        continue;
      }
      std::fill(pk, pk + stride, 0.0f);
      for (int64_t r = ch * rows; r < std::min(R, (ch + 1) * rows); ++r) {
        const int64_t b = r / p.OH, oh = r % p.OH;
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const float* __restrict g = dout + (r * p.OW + ow) * OC;
          for (int64_t o = 0; o < OC; ++o) pb[o] += g[o];
          for_taps(p, b, oh, ow, [&](int64_t xi, int64_t tap) {
            const float* __restrict a = x + xi;
            float* __restrict dk = pk + tap * OC;
            if (DM == 1) {
              for (int64_t o = 0; o < OC; ++o) dk[o] += g[o] * a[o];  // vectorised
            } else {
              for (int64_t o = 0; o < OC; ++o) dk[o] += g[o] * a[o / DM];
            }
          });
        }
      }
    }
  });
  // chunks in order; each element by one thread
  parallel_for(0, stride, std::max<int64_t>(kGrain / std::max<int64_t>(chunks, 1), 1), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* dst = i < NK ? (dkernel ? dkernel + i : nullptr) : (dbias ? dbias + (i - NK) : nullptr);
      if (!dst) continue;
      float s = 0.0f;
      for (int64_t ch = 0; ch < chunks; ++ch) s += part[ch * stride + i];
      *dst = s;
    }
  });
}

void depthwise_conv2d_backward(float* dx, float* dkernel, float* dbias, const float* dout, const float* x,
                               const float* kernel, const Conv2dParams& p) {
  if (dx) depthwise_dx(dx, dout, kernel, p);
  if (dkernel || dbias) depthwise_dkernel(dkernel, dbias, dout, x, p);
}
}  // namespace

void fill_depthwise(VisionOps& t) {
  t.depthwise_conv2d_forward = depthwise_conv2d_forward;
  t.depthwise_conv2d_backward = depthwise_conv2d_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
