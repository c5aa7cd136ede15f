// Launchers of the CUDA kernels (defined in the .cu files), called by the binding files with device
// pointers. All run on launch_stream() of the current device and return without syncing; errors surface
// through check(cudaGetLastError()) in the callers.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/optim.h"

namespace fastnn {
namespace cuda {
// fastnn's stream on the current device (allocator.cpp): one blocking stream per device, so the synchronous
// host copies (legacy default stream) stay ordered after the kernels, and a CUDA graph can capture it.
cudaStream_t launch_stream();

// elt.cu: the CPU EltOps with the same meaning (csrc/ops/eltwise.h).
void unary_forward(int op, float* y, const float* x, int64_t n, float alpha);
void unary_backward(int op, float* dx, const float* dy, const float* s, int64_t n, float alpha);
void softmax_forward(float* y, const float* x, int64_t outer, int64_t K, int64_t inner, int log);
void softmax_backward(float* dx, const float* dy, const float* y, int64_t outer, int64_t K, int64_t inner, int log);
// labels (B,) int32 or nullptr; bad_label: device int set to 1 when a label is outside [0, K).
void softmax_xent_forward(float* loss, float* lse, const float* x, const int32_t* labels, const float* target,
                          int64_t B, int64_t K, int* bad_label);
void softmax_xent_backward(float* dx, const float* dloss, const float* x, const float* lse, const int32_t* labels,
                           const float* target, int64_t B, int64_t K, int* bad_label);
void prob_xent_forward(float* loss, const float* p, const int32_t* labels, const float* target, int64_t B, int64_t K,
                       float eps, int* bad_label);
void prob_xent_backward(float* dp, const float* dloss, const float* p, const int32_t* labels, const float* target,
                        int64_t B, int64_t K, float eps, int* bad_label);
// Writes the sum of the per-element losses (double) to *sum_dev; deterministic (fixed blocks, ordered sum).
void point_loss_forward(int kind, const float* p, const float* y, int64_t n, float eps, double* sum_dev,
                        double* partials /* kPointLossBlocks doubles */);
constexpr int kPointLossBlocks = 256;
void point_loss_backward(int kind, float* dp, const float* p, const float* y, int64_t n, float scale, float eps);
void dropout(float* y, const float* x, int64_t n, double rate, uint64_t seed, uint64_t offset);
// y[i] = v (a Python scalar) or y[i] = *src (a one-element device array) for i < n.
void fill(float* y, float v, int64_t n);
void broadcast(float* y, const float* src, int64_t n);

// optim.cu: one launch updates up to kOptimJobs parameter tensors (the fused multi-tensor update).
struct OptimJob {
  float* p;
  const float* g;
  float* s[3];
  int64_t n;
};
constexpr int kOptimJobs = 48;
// rule: an OptimRule (ops/optim.h).
void optim_update(int rule, const OptimHyper& h, const OptimJob* jobs, int njobs);

// gemm.cu: our tiled kernel (any element strides), and the bias/activation epilogue used after cuBLAS.
void gemm_tiled(const GemmParams& p);
void bias_act(float* C, int64_t M, int64_t N, int64_t ldc, const float* bias, int act);

// conv.cu (NHWC; csrc/ops/conv.h). col is (B*OH*OW, KH*KW*C); col2im WRITES dx (a gather, no atomics).
void im2col(float* col, const float* x, const Conv2dParams& p);
void col2im(float* dx, const float* dcol, const Conv2dParams& p);
void maxpool2d_forward(float* out, const float* x, const Pool2dParams& p);
void maxpool2d_backward(float* dx, const float* dout, const float* x, const Pool2dParams& p);  // recomputes argmax
void avgpool2d_forward(float* out, const float* x, const Pool2dParams& p);
void avgpool2d_backward(float* dx, const float* dout, const Pool2dParams& p);
}  // namespace cuda
}  // namespace fastnn
