// Max and average pooling, NHWC: every window cell is a contiguous run of C channels, so the inner
// loops are plain vectorised loops over c. Threads split output rows (b, oh). Pooling is memory-bound:
// max pooling can save each output's window cell number (1 byte) so that its backward never re-reads x,
// and backwards write dx once when the windows tile the image exactly (the 2x2 / stride 2 case).
#include <algorithm>
#include <cstdint>

#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
constexpr int kArgSlot = 0;           // per-thread (C,) window cell numbers of the current output
constexpr int64_t kPoolGrain = 32768; // window cells x channels per thread below which we stay serial

// The window of output (oh, ow) restricted to the image: rows [h0, h1), columns [w0, w1).
struct Window {
  int64_t h0, h1, w0, w1;
  int64_t cells() const { return (h1 - h0) * (w1 - w0); }
};
inline Window window(const Pool2dParams& p, int64_t oh, int64_t ow) {
  const int64_t ih = oh * p.SH - p.pad_top, iw = ow * p.SW - p.pad_left;
  return {std::max<int64_t>(ih, 0), std::min(ih + p.KH, p.H), std::max<int64_t>(iw, 0), std::min(iw + p.KW, p.W)};
}

// Every input cell lies in exactly one window: backward can assign instead of zero-fill + add.
inline bool tiles_exactly(const Pool2dParams& p) {
  return p.SH == p.KH && p.SW == p.KW && p.OH * p.SH - p.pad_top >= p.H && p.OW * p.SW - p.pad_left >= p.W;
}

// Calls f(b, oh) for output rows [0, B*OH) in parallel. With dx (backward) and windows that do not
// tile the image, a thread first zeroes the input rows that only its windows touch, then f adds into
// them (cache-hot). When windows of neighbouring rows overlap (SH < KH) a thread owns whole images,
// so adds never race and keep a thread-count independent order; otherwise it owns single rows.
template <class F>
void for_rows(const Pool2dParams& p, float* dx, const F& f) {
  const int64_t rows = (dx && p.SH < p.KH) ? p.OH : 1, units = p.B * p.OH / rows;
  const int64_t per_unit = std::max<int64_t>(rows * p.OW * p.KH * p.KW * p.C, 1);
  const bool zero = dx && !tiles_exactly(p);
  const auto start = [&](int64_t oh) {  // first input row owned by output row oh
    return oh == 0 ? 0 : oh == p.OH ? p.H : std::min(std::max<int64_t>(oh * p.SH - p.pad_top, 0), p.H);
  };
  parallel_for(0, units, std::max<int64_t>(kPoolGrain / per_unit, 1), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t b = u * rows / p.OH, oh0 = u * rows % p.OH;
      if (zero) std::fill(dx + (b * p.H + start(oh0)) * p.W * p.C, dx + (b * p.H + start(oh0 + rows)) * p.W * p.C, 0.0f);
      for (int64_t oh = oh0; oh < oh0 + rows; ++oh) f(b, oh);
    }
  });
}

// Calls f(d, k) for the cells of window w of image b, d = &dx[cell][0], k = cell number in scan order.
template <class T, class F>
inline void for_cells(const Pool2dParams& p, T* base, int64_t b, const Window& w, const F& f) {
  for (int64_t ih = w.h0; ih < w.h1; ++ih)
    for (int64_t iw = w.w0; iw < w.w1; ++iw) f(base + ((b * p.H + ih) * p.W + iw) * p.C, int32_t((ih - w.h0) * (w.w1 - w.w0) + iw - w.w0));
}

// out = window max; arg (C,) = cell number of the first max (strictly greater wins: ties keep the first).
inline void window_max(float* o, int32_t* arg, const float* x, const Pool2dParams& p, int64_t b, const Window& w) {
  const int64_t C = p.C;
  for_cells(p, x, b, w, [&](const float* s, int32_t k) {
    if (k == 0) {
      std::copy(s, s + C, o);
      std::fill(arg, arg + C, 0);
      return;
    }
    for (int64_t c = 0; c < C; ++c) {
      const bool gt = s[c] > o[c];
      o[c] = gt ? s[c] : o[c];
      arg[c] = gt ? k : arg[c];
    }
  });
}

// argmax (B,OH,OW,C) or null: window cell numbers for maxpool2d_backward (windows of <= 255 cells).
void maxpool2d_forward(float* out, uint8_t* argmax, const float* x, const Pool2dParams& p) {
  const int64_t C = p.C;
  for_rows(p, nullptr, [&](int64_t b, int64_t oh) {
    int32_t* arg = reinterpret_cast<int32_t*>(scratch(kArgSlot, size_t(C)));
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const int64_t o = ((b * p.OH + oh) * p.OW + ow) * C;
      window_max(out + o, arg, x, p, b, window(p, oh, ow));
      if (argmax)
        for (int64_t c = 0; c < C; ++c) argmax[o + c] = uint8_t(arg[c]);
    }
  });
}

// dx = dout at each window's first max (from argmax when given, else recomputed from x).
void maxpool2d_backward(float* dx, const float* dout, const float* x, const uint8_t* argmax, const Pool2dParams& p) {
  const int64_t C = p.C;
  const bool assign = tiles_exactly(p);
  for_rows(p, dx, [&](int64_t b, int64_t oh) {
    float* tmp = scratch(kArgSlot, size_t(2 * C));
    int32_t* arg = reinterpret_cast<int32_t*>(tmp + C);
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const Window w = window(p, oh, ow);
      const int64_t o = ((b * p.OH + oh) * p.OW + ow) * C;
      if (argmax) for (int64_t c = 0; c < C; ++c) arg[c] = argmax[o + c];
      else window_max(tmp, arg, x, p, b, w);
      const float* g = dout + o;
      for_cells(p, dx, b, w, [&](float* d, int32_t k) {
        if (assign) for (int64_t c = 0; c < C; ++c) d[c] = arg[c] == k ? g[c] : 0.0f;
        else for (int64_t c = 0; c < C; ++c) d[c] += arg[c] == k ? g[c] : 0.0f;
      });
    }
  });
}

void avgpool2d_forward(float* out, const float* x, const Pool2dParams& p) {
  const int64_t C = p.C;
  for_rows(p, nullptr, [&](int64_t b, int64_t oh) {
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const Window w = window(p, oh, ow);
      float* o = out + ((b * p.OH + oh) * p.OW + ow) * C;
      std::fill(o, o + C, 0.0f);
      for_cells(p, x, b, w, [&](const float* s, int32_t) {
        for (int64_t c = 0; c < C; ++c) o[c] += s[c];
      });
      const float inv = 1.0f / float(w.cells());
      for (int64_t c = 0; c < C; ++c) o[c] *= inv;
    }
  });
}

void avgpool2d_backward(float* dx, const float* dout, const Pool2dParams& p) {
  const int64_t C = p.C;
  const bool assign = tiles_exactly(p);
  for_rows(p, dx, [&](int64_t b, int64_t oh) {
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const Window w = window(p, oh, ow);
      const float inv = 1.0f / float(w.cells());
      const float* g = dout + ((b * p.OH + oh) * p.OW + ow) * C;
      for_cells(p, dx, b, w, [&](float* d, int32_t) {
        if (assign) for (int64_t c = 0; c < C; ++c) d[c] = g[c] * inv;
        else for (int64_t c = 0; c < C; ++c) d[c] += g[c] * inv;
      });
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
