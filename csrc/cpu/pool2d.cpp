// Max and average pooling, NHWC: every window cell is a contiguous run of C channels, so the inner
// loops are plain vectorised loops over c. Threads split output rows (b, oh). Pooling is memory-bound:
// max pooling can save each output's window cell number (1 byte) so that its backward never re-reads x,
// and backwards write dx once when the windows tile the image exactly (the 2x2 / stride 2 case).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/vmath.h"
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

using vm::vf;
using vi = vm::IntOf<vf>;
typedef uint8_t vb __attribute__((vector_size(vm::W)));  // W cell numbers as bytes
constexpr int kMaxCells = 256;  // windows with more cells take the scalar loops below

// The window's cells in scan order: cell[k] = &x[b][ih][iw][0]; returns their count.
template <class T>
inline int window_cells(T** cell, const Pool2dParams& p, T* base, int64_t b, const Window& w) {
  int n = 0;
  for_cells(p, base, b, w, [&](T* c, int32_t) { cell[n++] = c; });
  return n;
}

// out = window max; arg (C,) int32 and/or argmax (C,) bytes (either may be null) = cell number of
// the first max (strictly greater wins: ties keep the first; a NaN first cell stays). W channels at a
// time (max and cell number selected together), the ragged end scalar.
inline void window_max(float* o, int32_t* arg, uint8_t* argmax, const float* const* cell, int n, int64_t C) {
  int64_t c = 0;
  for (; c + vm::W <= C; c += vm::W) {
    vf m = vm::load<vf>(cell[0] + c);
    vi a{};
    for (int k = 1; k < n; ++k) {
      const vf v = vm::load<vf>(cell[k] + c);
      const vi gt = v > m;
      m = gt ? v : m;
      a = gt ? vi{} + k : a;
    }
    vm::store(o + c, m);
    if (arg) std::memcpy(arg + c, &a, sizeof a);
    if (argmax) {
      const vb bytes = __builtin_convertvector(a, vb);
      std::memcpy(argmax + c, &bytes, sizeof bytes);
    }
  }
  for (; c < C; ++c) {
    float m = cell[0][c];
    int32_t a = 0;
    for (int k = 1; k < n; ++k)
      if (cell[k][c] > m) { m = cell[k][c]; a = k; }
    o[c] = m;
    if (arg) arg[c] = a;
    if (argmax) argmax[c] = uint8_t(a);
  }
}

// Windows of more than kMaxCells cells (no byte argmax): the plain scan.
inline void window_max_large(float* o, int32_t* arg, const float* x, const Pool2dParams& p, int64_t b, const Window& w) {
  const int64_t C = p.C;
  for_cells(p, x, b, w, [&](const float* s, int32_t k) {
    for (int64_t c = 0; c < C; ++c)
      if (k == 0 || s[c] > o[c]) { o[c] = s[c]; arg[c] = k; }
  });
}

// argmax (B,OH,OW,C) or null: window cell numbers for maxpool2d_backward (windows of <= 255 cells).
void maxpool2d_forward(float* out, uint8_t* argmax, const float* x, const Pool2dParams& p) {
  const int64_t C = p.C;
  for_rows(p, nullptr, [&](int64_t b, int64_t oh) {
    const float* cell[kMaxCells];
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const int64_t o = ((b * p.OH + oh) * p.OW + ow) * C;
      const Window w = window(p, oh, ow);
      if (w.cells() <= kMaxCells) {
        window_max(out + o, nullptr, argmax ? argmax + o : nullptr, cell, window_cells(cell, p, x, b, w), C);
      } else {
        int32_t* arg = reinterpret_cast<int32_t*>(scratch(kArgSlot, size_t(C)));
        window_max_large(out + o, arg, x, p, b, w);  // (argmax is never asked for these windows)
      }
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
    const float* xcell[kMaxCells];
    float* dcell[kMaxCells];
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const Window w = window(p, oh, ow);
      const int64_t o = ((b * p.OH + oh) * p.OW + ow) * C;
      const float* g = dout + o;
      if (w.cells() > kMaxCells) {  // scalar, from x
        window_max_large(tmp, arg, x, p, b, w);
        for_cells(p, dx, b, w, [&](float* d, int32_t k) {
          for (int64_t c = 0; c < C; ++c) d[c] = (assign ? 0.0f : d[c]) + (arg[c] == k ? g[c] : 0.0f);
        });
        continue;
      }
      const int n = window_cells(dcell, p, dx, b, w);
      if (!argmax) window_max(tmp, arg, nullptr, xcell, window_cells(xcell, p, x, b, w), C);
      int64_t c = 0;
      for (; c + vm::W <= C; c += vm::W) {
        vi a;
        if (argmax) {
          vb bytes;
          std::memcpy(&bytes, argmax + o + c, sizeof bytes);
          a = __builtin_convertvector(bytes, vi);
        } else {
          std::memcpy(&a, arg + c, sizeof a);
        }
        const vf gv = vm::load<vf>(g + c);
        for (int k = 0; k < n; ++k) {
          const vf v = a == k ? gv : vf{};
          vm::store(dcell[k] + c, assign ? v : vm::load<vf>(dcell[k] + c) + v);
        }
      }
      for (; c < C; ++c) {
        const int32_t a = argmax ? argmax[o + c] : arg[c];
        for (int k = 0; k < n; ++k) dcell[k][c] = (assign ? 0.0f : dcell[k][c]) + (a == k ? g[c] : 0.0f);
      }
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
