// Naive reference pooling (the test oracle). Windows skip cells in the padding: max never picks
// them, the average divides by the number of cells inside the image (Keras/TF semantics).
#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
// Calls f(cell index into x) for every cell of window (b, oh, ow) inside the image, in scan order
// kh, kw; channel offsets are added by the caller.
template <class F>
void for_window(const Pool2dParams& p, int64_t b, int64_t oh, int64_t ow, const F& f) {
  for (int64_t kh = 0; kh < p.KH; ++kh) {
    const int64_t ih = oh * p.SH - p.pad_top + kh;
    if (ih < 0 || ih >= p.H) continue;
    for (int64_t kw = 0; kw < p.KW; ++kw) {
      const int64_t iw = ow * p.SW - p.pad_left + kw;
      if (iw >= 0 && iw < p.W) f((b * p.H + ih) * p.W + iw);
    }
  }
}

// Index (cell*C + c) into x of the first maximal cell of the window, channel c, and its cell number.
int64_t argmax(const float* x, const Pool2dParams& p, int64_t b, int64_t oh, int64_t ow, int64_t c, int64_t* k = nullptr) {
  int64_t best = -1, n = 0;
  for_window(p, b, oh, ow, [&](int64_t cell) {
    const int64_t i = cell * p.C + c;
    if (best < 0 || x[i] > x[best]) {
      best = i;
      if (k) *k = n;
    }
    ++n;
  });
  return best;
}

// Index into x of cell number k of the window (channel c), or -1 when the window has no such cell.
int64_t nth_cell(const Pool2dParams& p, int64_t b, int64_t oh, int64_t ow, int64_t c, int64_t k) {
  int64_t n = 0, found = -1;
  for_window(p, b, oh, ow, [&](int64_t cell) {
    if (n++ == k) found = cell * p.C + c;
  });
  return found;
}

// Calls f(b, oh, ow, c, index into out) for every output element.
template <class F>
void for_output(const Pool2dParams& p, const F& f) {
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow)
        for (int64_t c = 0; c < p.C; ++c) f(b, oh, ow, c, ((b * p.OH + oh) * p.OW + ow) * p.C + c);
}

void maxpool2d_forward(float* out, uint8_t* arg, const float* x, const Pool2dParams& p) {
  for_output(p, [&](int64_t b, int64_t oh, int64_t ow, int64_t c, int64_t o) {
    int64_t k = 0;
    out[o] = x[argmax(x, p, b, oh, ow, c, &k)];
    if (arg) arg[o] = uint8_t(k);
  });
}

// The backwards overwrite dx (see ops/conv.h).
void zero_dx(float* dx, const Pool2dParams& p) {
  for (int64_t i = 0; i < p.B * p.H * p.W * p.C; ++i) dx[i] = 0.0f;
}

void maxpool2d_backward(float* dx, const float* dout, const float* x, const uint8_t* arg, const Pool2dParams& p) {
  zero_dx(dx, p);
  for_output(p, [&](int64_t b, int64_t oh, int64_t ow, int64_t c, int64_t o) {
    const int64_t i = arg ? nth_cell(p, b, oh, ow, c, arg[o]) : argmax(x, p, b, oh, ow, c);
    if (i >= 0) dx[i] += dout[o];
  });
}

int64_t count(const Pool2dParams& p, int64_t oh, int64_t ow) {
  int64_t n = 0;
  for_window(p, 0, oh, ow, [&](int64_t) { ++n; });
  return n;
}

void avgpool2d_forward(float* out, const float* x, const Pool2dParams& p) {
  for_output(p, [&](int64_t b, int64_t oh, int64_t ow, int64_t c, int64_t o) {
    double acc = 0.0;
    for_window(p, b, oh, ow, [&](int64_t cell) { acc += double(x[cell * p.C + c]); });
    out[o] = float(acc / double(count(p, oh, ow)));
  });
}

void avgpool2d_backward(float* dx, const float* dout, const Pool2dParams& p) {
  zero_dx(dx, p);
  for_output(p, [&](int64_t b, int64_t oh, int64_t ow, int64_t c, int64_t o) {
    const float g = float(double(dout[o]) / double(count(p, oh, ow)));
    for_window(p, b, oh, ow, [&](int64_t cell) { dx[cell * p.C + c] += g; });
  });
}
}  // namespace

void fill_pool(ConvOps& t) {
  t.maxpool2d_forward = maxpool2d_forward;
  t.maxpool2d_backward = maxpool2d_backward;
  t.avgpool2d_forward = avgpool2d_forward;
  t.avgpool2d_backward = avgpool2d_backward;
}
}  // namespace ref
}  // namespace fastnn
