// Winograd F(2x2, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016) for 3x3, stride-1, undilated layers: each 2x2 output tile costs 16 products per
// (input, output) channel pair instead of 36, i.e. 2.25x fewer multiply-adds than im2col + GEMM.
// Used by conv2d.cpp for the forward pass, for dx (a 3x3 stride-1 convolution of dout with the
// flipped, channel-swapped kernel) and for dkernel (F(3x3, 2x2) over the same tiles).
#pragma once
#include "fastnn.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace winograd {

// Whether a convolution with these parameters, Ci input and Co output channels, takes this path
// (3x3, stride 1, dilation 1, and enough channels for the 16 small GEMMs to run near peak).
bool applies(const Conv2dParams& p, int64_t Ci, int64_t Co);

// out = act(conv(x, kernel) + bias) (NHWC x HWIO; bias may be null; act as in ops/gemm.h).
void forward(float* out, const float* x, const float* kernel, const float* bias, int act, const Conv2dParams& p);

// dx = the input gradient of conv(x, kernel) for dout (B, OH, OW, OC).
void input_grad(float* dx, const float* dout, const float* kernel, const Conv2dParams& p);

// Whether weight_grad takes this layer (applies(), and its per-chunk sums fit the scratch bound).
bool weight_grad_applies(const Conv2dParams& p);

// dkernel = the kernel gradient (F(3x3, 2x2): the same 16-GEMM structure summed over tiles).
void weight_grad(float* dkernel, const float* dout, const float* x, const Conv2dParams& p);

}  // namespace winograd
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
