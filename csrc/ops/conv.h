// Convolution and pooling op group, NHWC activations and HWIO (Keras) kernels.
//
// Geometry is resolved once at the boundary (bindings: Keras "valid"/"same" with the TF padding rule)
// into a param struct; kernels trust it: every tap (oh*SH - pad_top + kh*DH, ...) outside [0,H)x[0,W)
// reads as zero (conv) or is skipped (pooling).
#pragma once
#include <cstdint>

#include "ops/gemm.h"

namespace fastnn {
// x is (B,H,W,C), kernel is (KH,KW,C,OC), out is (B,OH,OW,OC).
struct Conv2dParams {
  int64_t B, H, W, C, OC, KH, KW, SH, SW, DH, DW, pad_top, pad_left, OH, OW;
};

// x is (B,H,W,C), out is (B,OH,OW,C); a window is KH x KW cells, stride SH x SW.
struct Pool2dParams {
  int64_t B, H, W, C, KH, KW, SH, SW, pad_top, pad_left, OH, OW;
};

struct ConvOps {
  // out = act(conv(x, kernel) (+ bias per output channel when bias != nullptr)); act is an Act
  // (ops/gemm.h): kActRelu fuses Keras's activation="relu" into the store.
  void (*conv2d_forward)(float* out, const float* x, const float* kernel, const float* bias, int act,
                         const Conv2dParams& p);
  // Writes the gradients dx (B,H,W,C), dkernel (KH,KW,C,OC), dbias (OC,); any may be nullptr (skipped).
  void (*conv2d_backward)(float* dx, float* dkernel, float* dbias, const float* dout, const float* x,
                          const float* kernel, const Conv2dParams& p);
  // Max over the window's cells inside the image (padding never wins). argmax (B,OH,OW,C) or null:
  // each output's window cell number (scan order kh, kw over the cells inside the image; windows of at
  // most 255 cells), so that the backward need not re-read x.
  void (*maxpool2d_forward)(float* out, uint8_t* argmax, const float* x, const Pool2dParams& p);
  // dx (B,H,W,C) = dout routed to each window's first maximal cell: argmax from the forward, or recomputed from
  // x when argmax is null. Cell numbers outside the window route nowhere (never out of bounds).
  void (*maxpool2d_backward)(float* dx, const float* dout, const float* x, const uint8_t* argmax,
                             const Pool2dParams& p);
  // Mean over the window's cells inside the image (Keras: padded cells are not counted).
  void (*avgpool2d_forward)(float* out, const float* x, const Pool2dParams& p);
  // dx = sum over the windows containing a cell of dout / count (the window's counted cells).
  void (*avgpool2d_backward)(float* dx, const float* dout, const Pool2dParams& p);
};
}  // namespace fastnn
