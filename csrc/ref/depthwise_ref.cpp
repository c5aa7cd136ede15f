// Naive reference depthwise convolution (the test oracle): every tap outside the image reads zero.
#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
// Calls f(index into x of (b, ih, iw, 0), tap index kh*KW + kw) for the taps of output (b, oh, ow) inside the image.
template <class F>
void for_taps(const Conv2dParams& p, int64_t b, int64_t oh, int64_t ow, const F& f) {
  for (int64_t kh = 0; kh < p.KH; ++kh) {
    const int64_t ih = oh * p.SH - p.pad_top + kh * p.DH;
    if (ih < 0 || ih >= p.H) continue;
    for (int64_t kw = 0; kw < p.KW; ++kw) {
      const int64_t iw = ow * p.SW - p.pad_left + kw * p.DW;
      if (iw >= 0 && iw < p.W) f(((b * p.H + ih) * p.W + iw) * p.C, kh * p.KW + kw);
    }
  }
}

// out[b,oh,ow,c*DM+m] = bias + sum_taps x[b,ih,iw,c] * kernel[kh,kw,c,m]
void depthwise_conv2d_forward(float* out, const float* x, const float* kernel, const float* bias,
                              const Conv2dParams& p) {
  const int64_t DM = p.OC / p.C;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow)
        for (int64_t o = 0; o < p.OC; ++o) {
          const int64_t c = o / DM;
          double s = bias ? bias[o] : 0.0;
          for_taps(p, b, oh, ow, [&](int64_t xi, int64_t tap) { s += double(x[xi + c]) * kernel[tap * p.OC + o]; });
          out[((b * p.OH + oh) * p.OW + ow) * p.OC + o] = float(s);
        }
}

void depthwise_conv2d_backward(float* dx, float* dkernel, float* dbias, const float* dout, const float* x,
                               const float* kernel, const Conv2dParams& p) {
  const int64_t DM = p.OC / p.C;
  const int64_t nx = p.B * p.H * p.W * p.C, nk = p.KH * p.KW * p.OC;
  double* ax = dx ? new double[nx]() : nullptr;
  double* ak = dkernel ? new double[nk]() : nullptr;
  double* ab = dbias ? new double[p.OC]() : nullptr;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow)
        for (int64_t o = 0; o < p.OC; ++o) {
          const int64_t c = o / DM;
          const double g = dout[((b * p.OH + oh) * p.OW + ow) * p.OC + o];
          if (ab) ab[o] += g;
          for_taps(p, b, oh, ow, [&](int64_t xi, int64_t tap) {
            if (ax) ax[xi + c] += g * kernel[tap * p.OC + o];
            if (ak) ak[tap * p.OC + o] += g * x[xi + c];
          });
        }
  for (int64_t i = 0; dx && i < nx; ++i) dx[i] = float(ax[i]);
  for (int64_t i = 0; dkernel && i < nk; ++i) dkernel[i] = float(ak[i]);
  for (int64_t i = 0; dbias && i < p.OC; ++i) dbias[i] = float(ab[i]);
  delete[] ax;
  delete[] ak;
  delete[] ab;
}
}  // namespace

void fill_depthwise(VisionOps& t) {
  t.depthwise_conv2d_forward = depthwise_conv2d_forward;
  t.depthwise_conv2d_backward = depthwise_conv2d_backward;
}
}  // namespace ref
}  // namespace fastnn
