// Convolution as im2col + GEMM, and pooling, NHWC (csrc/ops/conv.h Conv2dParams / Pool2dParams).
// Every backward kernel is written as a gather (each dx element sums the outputs that read it, in a fixed
// order), so no atomics are needed and results are deterministic.
#include <cuda_runtime.h>

#include "cuda/kernels.h"
#include "ops/conv.h"

namespace fastnn {
namespace cuda {
namespace {
constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}
#define FOR_EACH(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// col (B*OH*OW, KH*KW*C): row (b, oh, ow), column (kh, kw, c) = x(b, oh*SH - PT + kh*DH, ow*SW - PL + kw*DW, c)
// or 0 in the padding. The column order is the kernel's (KH, KW, C, OC) row order, so out = col @ kernel.
__global__ void im2col_k(float* col, const float* x, Conv2dParams p) {
  const int64_t KC = p.KH * p.KW * p.C;
  FOR_EACH(e, p.B * p.OH * p.OW * KC) {
    const int64_t r = e / KC, q = e % KC;
    const int64_t c = q % p.C, kw = (q / p.C) % p.KW, kh = q / (p.C * p.KW);
    const int64_t ow = r % p.OW, oh = (r / p.OW) % p.OH, b = r / (p.OW * p.OH);
    const int64_t h = oh * p.SH - p.pad_top + kh * p.DH, w = ow * p.SW - p.pad_left + kw * p.DW;
    col[e] = (h >= 0 && h < p.H && w >= 0 && w < p.W) ? x[((b * p.H + h) * p.W + w) * p.C + c] : 0.0f;
  }
}

// dx(b, h, w, c) = sum over (kh, kw) of dcol at the output that read x(b, h, w, c) through tap (kh, kw).
__global__ void col2im_k(float* dx, const float* dcol, Conv2dParams p) {
  const int64_t KC = p.KH * p.KW * p.C;
  FOR_EACH(e, p.B * p.H * p.W * p.C) {
    const int64_t c = e % p.C, w = (e / p.C) % p.W, h = (e / (p.C * p.W)) % p.H, b = e / (p.C * p.W * p.H);
    float s = 0.0f;
    for (int64_t kh = 0; kh < p.KH; ++kh) {
      const int64_t th = h + p.pad_top - kh * p.DH;
      if (th < 0 || th % p.SH) continue;
      const int64_t oh = th / p.SH;
      if (oh >= p.OH) continue;
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        const int64_t tw = w + p.pad_left - kw * p.DW;
        if (tw < 0 || tw % p.SW) continue;
        const int64_t ow = tw / p.SW;
        if (ow >= p.OW) continue;
        s += dcol[((b * p.OH + oh) * p.OW + ow) * KC + (kh * p.KW + kw) * p.C + c];
      }
    }
    dx[e] = s;
  }
}

// The first maximal cell inside the image of output (b, oh, ow)'s window, channel c (scan order kh, kw;
// padding never wins): its index into x, or -1 for a window with no cell inside.
__device__ inline int64_t window_argmax(const float* x, const Pool2dParams& p, int64_t b, int64_t oh, int64_t ow,
                                        int64_t c) {
  int64_t best = -1;
  for (int64_t kh = 0; kh < p.KH; ++kh) {
    const int64_t h = oh * p.SH - p.pad_top + kh;
    if (h < 0 || h >= p.H) continue;
    for (int64_t kw = 0; kw < p.KW; ++kw) {
      const int64_t w = ow * p.SW - p.pad_left + kw;
      if (w < 0 || w >= p.W) continue;
      const int64_t i = ((b * p.H + h) * p.W + w) * p.C + c;
      if (best < 0 || x[i] > x[best]) best = i;
    }
  }
  return best;
}
__device__ inline int64_t window_count(const Pool2dParams& p, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * p.SH - p.pad_top, w0 = ow * p.SW - p.pad_left;
  const int64_t hs = min(h0 + p.KH, p.H) - max(h0, int64_t(0)), ws = min(w0 + p.KW, p.W) - max(w0, int64_t(0));
  return hs > 0 && ws > 0 ? hs * ws : 0;
}

__global__ void maxpool_forward_k(float* out, const float* x, Pool2dParams p) {
  FOR_EACH(o, p.B * p.OH * p.OW * p.C) {
    const int64_t c = o % p.C, ow = (o / p.C) % p.OW, oh = (o / (p.C * p.OW)) % p.OH, b = o / (p.C * p.OW * p.OH);
    const int64_t i = window_argmax(x, p, b, oh, ow, c);
    out[o] = i >= 0 ? x[i] : 0.0f;
  }
}

// The outputs whose windows contain row h: oh in [lo, hi] (window rows oh*SH - PT .. + KH - 1).
__device__ inline void covering(int64_t h, int64_t pad, int64_t K, int64_t S, int64_t O, int64_t& lo, int64_t& hi) {
  const int64_t t = h + pad;
  lo = t - K + 1 <= 0 ? 0 : (t - K + 1 + S - 1) / S;
  hi = min(t / S, O - 1);
}

__global__ void maxpool_backward_k(float* dx, const float* dout, const float* x, Pool2dParams p) {
  FOR_EACH(e, p.B * p.H * p.W * p.C) {
    const int64_t c = e % p.C, w = (e / p.C) % p.W, h = (e / (p.C * p.W)) % p.H, b = e / (p.C * p.W * p.H);
    int64_t oh0, oh1, ow0, ow1;
    covering(h, p.pad_top, p.KH, p.SH, p.OH, oh0, oh1);
    covering(w, p.pad_left, p.KW, p.SW, p.OW, ow0, ow1);
    float s = 0.0f;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow)
        if (window_argmax(x, p, b, oh, ow, c) == e) s += dout[((b * p.OH + oh) * p.OW + ow) * p.C + c];
    dx[e] = s;
  }
}

__global__ void avgpool_forward_k(float* out, const float* x, Pool2dParams p) {
  FOR_EACH(o, p.B * p.OH * p.OW * p.C) {
    const int64_t c = o % p.C, ow = (o / p.C) % p.OW, oh = (o / (p.C * p.OW)) % p.OH, b = o / (p.C * p.OW * p.OH);
    float s = 0.0f;
    for (int64_t kh = 0; kh < p.KH; ++kh) {
      const int64_t h = oh * p.SH - p.pad_top + kh;
      if (h < 0 || h >= p.H) continue;
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        const int64_t w = ow * p.SW - p.pad_left + kw;
        if (w >= 0 && w < p.W) s += x[((b * p.H + h) * p.W + w) * p.C + c];
      }
    }
    const int64_t n = window_count(p, oh, ow);
    out[o] = n ? s / float(n) : 0.0f;
  }
}

__global__ void avgpool_backward_k(float* dx, const float* dout, Pool2dParams p) {
  FOR_EACH(e, p.B * p.H * p.W * p.C) {
    const int64_t c = e % p.C, w = (e / p.C) % p.W, h = (e / (p.C * p.W)) % p.H, b = e / (p.C * p.W * p.H);
    int64_t oh0, oh1, ow0, ow1;
    covering(h, p.pad_top, p.KH, p.SH, p.OH, oh0, oh1);
    covering(w, p.pad_left, p.KW, p.SW, p.OW, ow0, ow1);
    float s = 0.0f;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow)
        s += dout[((b * p.OH + oh) * p.OW + ow) * p.C + c] / float(window_count(p, oh, ow));
    dx[e] = s;
  }
}
}  // namespace

void im2col(float* col, const float* x, const Conv2dParams& p) {
  im2col_k<<<blocks_for(p.B * p.OH * p.OW * p.KH * p.KW * p.C), kThreads, 0, launch_stream()>>>(col, x, p);
}
void col2im(float* dx, const float* dcol, const Conv2dParams& p) {
  col2im_k<<<blocks_for(p.B * p.H * p.W * p.C), kThreads, 0, launch_stream()>>>(dx, dcol, p);
}
void maxpool2d_forward(float* out, const float* x, const Pool2dParams& p) {
  maxpool_forward_k<<<blocks_for(p.B * p.OH * p.OW * p.C), kThreads, 0, launch_stream()>>>(out, x, p);
}
void maxpool2d_backward(float* dx, const float* dout, const float* x, const Pool2dParams& p) {
  maxpool_backward_k<<<blocks_for(p.B * p.H * p.W * p.C), kThreads, 0, launch_stream()>>>(dx, dout, x, p);
}
void avgpool2d_forward(float* out, const float* x, const Pool2dParams& p) {
  avgpool_forward_k<<<blocks_for(p.B * p.OH * p.OW * p.C), kThreads, 0, launch_stream()>>>(out, x, p);
}
void avgpool2d_backward(float* dx, const float* dout, const Pool2dParams& p) {
  avgpool_backward_k<<<blocks_for(p.B * p.H * p.W * p.C), kThreads, 0, launch_stream()>>>(dx, dout, p);
}
}  // namespace cuda
}  // namespace fastnn
