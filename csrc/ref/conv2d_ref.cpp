// Naive reference convolution (the test oracle): direct loops over every tap, double accumulators.
#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
// Input cell read by output (oh, ow) at tap (kh, kw), or false when it falls into the padding.
inline bool tap(const Conv2dParams& p, int64_t oh, int64_t ow, int64_t kh, int64_t kw, int64_t& ih, int64_t& iw) {
  ih = oh * p.SH - p.pad_top + kh * p.DH;
  iw = ow * p.SW - p.pad_left + kw * p.DW;
  return ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
}

// x (B,H,W,C), kernel (KH,KW,C,OC), bias (OC,) or null -> out (B,OH,OW,OC), then act.
void conv2d_forward(float* out, const float* x, const float* kernel, const float* bias, int act,
                    const Conv2dParams& p) {
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow)
        for (int64_t oc = 0; oc < p.OC; ++oc) {
          double acc = bias ? double(bias[oc]) : 0.0;
          for (int64_t kh = 0; kh < p.KH; ++kh)
            for (int64_t kw = 0; kw < p.KW; ++kw) {
              int64_t ih, iw;
              if (!tap(p, oh, ow, kh, kw, ih, iw)) continue;
              for (int64_t c = 0; c < p.C; ++c)
                acc += double(x[((b * p.H + ih) * p.W + iw) * p.C + c]) *
                       double(kernel[((kh * p.KW + kw) * p.C + c) * p.OC + oc]);
            }
          if (act == kActRelu && !(acc > 0.0)) acc = (acc != acc) ? acc : 0.0;  // relu keeps NaN as NaN
          out[((b * p.OH + oh) * p.OW + ow) * p.OC + oc] = float(acc);
        }
}

// Writes dL/dx, dL/dkernel, dL/dbias (each optional) given dout (B,OH,OW,OC). Each gradient element
// is one double sum over the outputs it feeds (dx: gathered over the taps that read the cell).
void conv2d_backward(float* dx, float* dkernel, float* dbias, const float* dout, const float* x,
                     const float* kernel, const Conv2dParams& p) {
  const auto g = [&](int64_t b, int64_t oh, int64_t ow, int64_t oc) {
    return double(dout[((b * p.OH + oh) * p.OW + ow) * p.OC + oc]);
  };
  if (dbias)
    for (int64_t oc = 0; oc < p.OC; ++oc) {
      double acc = 0.0;
      for (int64_t b = 0; b < p.B; ++b)
        for (int64_t oh = 0; oh < p.OH; ++oh)
          for (int64_t ow = 0; ow < p.OW; ++ow) acc += g(b, oh, ow, oc);
      dbias[oc] = float(acc);
    }
  if (dkernel)
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw)
        for (int64_t c = 0; c < p.C; ++c)
          for (int64_t oc = 0; oc < p.OC; ++oc) {
            double acc = 0.0;
            for (int64_t b = 0; b < p.B; ++b)
              for (int64_t oh = 0; oh < p.OH; ++oh)
                for (int64_t ow = 0; ow < p.OW; ++ow) {
                  int64_t ih, iw;
                  if (tap(p, oh, ow, kh, kw, ih, iw))
                    acc += double(x[((b * p.H + ih) * p.W + iw) * p.C + c]) * g(b, oh, ow, oc);
                }
            dkernel[((kh * p.KW + kw) * p.C + c) * p.OC + oc] = float(acc);
          }
  if (dx)
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t ih = 0; ih < p.H; ++ih)
        for (int64_t iw = 0; iw < p.W; ++iw)
          for (int64_t c = 0; c < p.C; ++c) {
            double acc = 0.0;
            for (int64_t kh = 0; kh < p.KH; ++kh)
              for (int64_t kw = 0; kw < p.KW; ++kw) {
                // the output (oh, ow) whose tap (kh, kw) reads (ih, iw), if any
                const int64_t sh = ih + p.pad_top - kh * p.DH, sw = iw + p.pad_left - kw * p.DW;
                if (sh < 0 || sw < 0 || sh % p.SH || sw % p.SW) continue;
                const int64_t oh = sh / p.SH, ow = sw / p.SW;
                if (oh >= p.OH || ow >= p.OW) continue;
                for (int64_t oc = 0; oc < p.OC; ++oc)
                  acc += g(b, oh, ow, oc) * double(kernel[((kh * p.KW + kw) * p.C + c) * p.OC + oc]);
              }
            dx[((b * p.H + ih) * p.W + iw) * p.C + c] = float(acc);
          }
}
}  // namespace

void fill_conv(ConvOps& t) {
  t.conv2d_forward = conv2d_forward;
  t.conv2d_backward = conv2d_backward;
}
}  // namespace ref
}  // namespace fastnn
