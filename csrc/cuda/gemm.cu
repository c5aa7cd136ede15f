// Our own SGEMM: C = alpha * op(A) op(B) + beta * C (+ bias per column, activation), any element strides
// (ops/gemm.h GemmParams), fp32 FMA. 64x64 tiles of C per 256-thread block, each thread a 4x4 patch;
// K advances 16 at a time through shared memory. Simple and exact in shape handling (every edge guarded),
// not tuned: cuBLAS (gemm_backend "cublas", bind_gemm.cpp) is the fast path when it is installed.
#include <cuda_runtime.h>

#include "cuda/kernels.h"

namespace fastnn {
namespace cuda {
namespace {
constexpr int BM = 64, BN = 64, BK = 16, TM = 4, TN = 4;

__device__ inline float epilogue(float v, const float* bias, int act, int64_t j) {
  if (bias) v += bias[j];
  return act == kActRelu ? fmaxf(v, 0.0f) : v;
}

__global__ void __launch_bounds__(256) gemm_k(GemmParams p) {
  __shared__ float As[BK][BM + 1];
  __shared__ float Bs[BK][BN + 1];
  const int tid = threadIdx.x, tr = tid / 16, tc = tid % 16;
  const int64_t i0 = int64_t(blockIdx.y) * BM, j0 = int64_t(blockIdx.x) * BN;
  float acc[TM][TN] = {};
  for (int64_t k0 = 0; k0 < p.K; k0 += BK) {
    for (int e = tid; e < BM * BK; e += 256) {  // A tile (BM x BK), B tile (BK x BN), zero outside
      const int r = e / BK, k = e % BK;
      const int64_t i = i0 + r, kk = k0 + k;
      As[k][r] = (i < p.M && kk < p.K) ? p.A[i * p.rsa + kk * p.csa] : 0.0f;
      const int kb = e / BN, c = e % BN;
      const int64_t kb2 = k0 + kb, j = j0 + c;
      Bs[kb][c] = (kb2 < p.K && j < p.N) ? p.B[kb2 * p.rsb + j * p.csb] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[TM], b[TN];
#pragma unroll
      for (int m = 0; m < TM; ++m) a[m] = As[k][tr * TM + m];
#pragma unroll
      for (int n = 0; n < TN; ++n) b[n] = Bs[k][tc * TN + n];
#pragma unroll
      for (int m = 0; m < TM; ++m)
#pragma unroll
        for (int n = 0; n < TN; ++n) acc[m][n] = fmaf(a[m], b[n], acc[m][n]);
    }
    __syncthreads();
  }
  for (int m = 0; m < TM; ++m)
    for (int n = 0; n < TN; ++n) {
      const int64_t i = i0 + tr * TM + m, j = j0 + tc * TN + n;
      if (i >= p.M || j >= p.N) continue;
      float* c = p.C + i * p.ldc + j;
      float v = p.alpha * acc[m][n];
      if (p.beta != 0.0f) v += p.beta * *c;  // beta == 0: C is write-only
      *c = epilogue(v, p.bias, p.act, j);
    }
}

__global__ void bias_act_k(float* C, int64_t M, int64_t N, int64_t ldc, const float* bias, int act) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < M * N; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / N, j = e % N;
    C[i * ldc + j] = epilogue(C[i * ldc + j], bias, act, j);
  }
}
}  // namespace

void gemm_tiled(const GemmParams& p) {
  if (p.M <= 0 || p.N <= 0) return;
  const dim3 grid(unsigned((p.N + BN - 1) / BN), unsigned((p.M + BM - 1) / BM));
  gemm_k<<<grid, 256, 0, launch_stream()>>>(p);
}

void bias_act(float* C, int64_t M, int64_t N, int64_t ldc, const float* bias, int act) {
  if (M * N == 0 || (!bias && act == kActNone)) return;
  const int64_t b = (M * N + 255) / 256;
  bias_act_k<<<unsigned(b < 65535 ? b : 65535), 256, 0, launch_stream()>>>(C, M, N, ldc, bias, act);
}
}  // namespace cuda
}  // namespace fastnn
