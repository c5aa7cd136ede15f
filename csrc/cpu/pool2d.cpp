// Max and average pooling, NHWC: every window cell is a contiguous run of C channels, so the inner
// loops are plain vectorised loops over c. Threads split output rows (b, oh).
#include <algorithm>
#include <cstdint>

#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
constexpr int kArgSlot = 0;           // per-thread (C,) best value + index for max backward
constexpr int64_t kPoolGrain = 32768; // window cells x channels per thread below which we stay serial

// The window of output (oh, ow) restricted to the image: rows [h0, h1), columns [w0, w1).
struct Window {
  int64_t h0, h1, w0, w1;
};
inline Window window(const Pool2dParams& p, int64_t oh, int64_t ow) {
  const int64_t ih = oh * p.SH - p.pad_top, iw = ow * p.SW - p.pad_left;
  return {std::max<int64_t>(ih, 0), std::min(ih + p.KH, p.H), std::max<int64_t>(iw, 0), std::min(iw + p.KW, p.W)};
}

// Calls f(b, oh) for output rows [0, B*OH) in parallel. Backward passes `disjoint` = false when the
// windows of neighbouring rows overlap (SH < KH): then one thread owns a whole image, so the adds into
// dx never race and keep a thread-count independent order.
template <class F>
void for_rows(const Pool2dParams& p, bool disjoint, const F& f) {
  const int64_t rows = disjoint ? 1 : p.OH, units = p.B * p.OH / rows;
  const int64_t per_unit = std::max<int64_t>(rows * p.OW * p.KH * p.KW * p.C, 1);
  parallel_for(0, units, std::max<int64_t>(kPoolGrain / per_unit, 1), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u)
      for (int64_t r = u * rows; r < (u + 1) * rows; ++r) f(r / p.OH, r % p.OH);
  });
}

void maxpool2d_forward(float* out, const float* x, const Pool2dParams& p) {
  const int64_t C = p.C;
  for_rows(p, true, [&](int64_t b, int64_t oh) {
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const Window w = window(p, oh, ow);
      float* o = out + ((b * p.OH + oh) * p.OW + ow) * C;
      const float* first = x + ((b * p.H + w.h0) * p.W + w.w0) * C;
      std::copy(first, first + C, o);
      for (int64_t ih = w.h0; ih < w.h1; ++ih)
        for (int64_t iw = ih == w.h0 ? w.w0 + 1 : w.w0; iw < w.w1; ++iw) {
          const float* s = x + ((b * p.H + ih) * p.W + iw) * C;
          for (int64_t c = 0; c < C; ++c) o[c] = s[c] > o[c] ? s[c] : o[c];  // first max wins ties
        }
    }
  });
}

void maxpool2d_backward(float* dx, const float* dout, const float* x, const Pool2dParams& p) {
  const int64_t C = p.C;
  for_rows(p, p.SH >= p.KH, [&](int64_t b, int64_t oh) {
    float* best = scratch(kArgSlot, size_t(2 * C));
    int32_t* arg = reinterpret_cast<int32_t*>(best + C);  // window cell number of the first max
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const Window w = window(p, oh, ow);
      const int64_t ww = w.w1 - w.w0;
      for (int64_t c = 0; c < C; ++c) { best[c] = x[((b * p.H + w.h0) * p.W + w.w0) * C + c]; arg[c] = 0; }
      for (int64_t ih = w.h0; ih < w.h1; ++ih)
        for (int64_t iw = w.w0; iw < w.w1; ++iw) {
          const int32_t k = int32_t((ih - w.h0) * ww + iw - w.w0);
          const float* s = x + ((b * p.H + ih) * p.W + iw) * C;
          for (int64_t c = 0; c < C; ++c) {
            const bool gt = s[c] > best[c];
            best[c] = gt ? s[c] : best[c];
            arg[c] = gt ? k : arg[c];
          }
        }
      const float* g = dout + ((b * p.OH + oh) * p.OW + ow) * C;
      for (int64_t ih = w.h0; ih < w.h1; ++ih)
        for (int64_t iw = w.w0; iw < w.w1; ++iw) {
          const int32_t k = int32_t((ih - w.h0) * ww + iw - w.w0);
          float* d = dx + ((b * p.H + ih) * p.W + iw) * C;
          for (int64_t c = 0; c < C; ++c) d[c] += arg[c] == k ? g[c] : 0.0f;
        }
    }
  });
}

void avgpool2d_forward(float* out, const float* x, const Pool2dParams& p) {
  const int64_t C = p.C;
  for_rows(p, true, [&](int64_t b, int64_t oh) {
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const Window w = window(p, oh, ow);
      float* o = out + ((b * p.OH + oh) * p.OW + ow) * C;
      std::fill(o, o + C, 0.0f);
      for (int64_t ih = w.h0; ih < w.h1; ++ih)
        for (int64_t iw = w.w0; iw < w.w1; ++iw) {
          const float* s = x + ((b * p.H + ih) * p.W + iw) * C;
          for (int64_t c = 0; c < C; ++c) o[c] += s[c];
        }
      const float inv = 1.0f / float((w.h1 - w.h0) * (w.w1 - w.w0));
      for (int64_t c = 0; c < C; ++c) o[c] *= inv;
    }
  });
}

void avgpool2d_backward(float* dx, const float* dout, const Pool2dParams& p) {
  const int64_t C = p.C;
  for_rows(p, p.SH >= p.KH, [&](int64_t b, int64_t oh) {
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const Window w = window(p, oh, ow);
      const float inv = 1.0f / float((w.h1 - w.h0) * (w.w1 - w.w0));
      const float* g = dout + ((b * p.OH + oh) * p.OW + ow) * C;
      for (int64_t ih = w.h0; ih < w.h1; ++ih)
        for (int64_t iw = w.w0; iw < w.w1; ++iw) {
          float* d = dx + ((b * p.H + ih) * p.W + iw) * C;
          for (int64_t c = 0; c < C; ++c) d[c] += g[c] * inv;
        }
    }
  });
}
}  // namespace

void fill_pool(ConvOps& t) {
  t.maxpool2d_forward = maxpool2d_forward;
  t.maxpool2d_backward = maxpool2d_backward;
  t.avgpool2d_forward = avgpool2d_forward;
  t.avgpool2d_backward = avgpool2d_backward;
}
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
