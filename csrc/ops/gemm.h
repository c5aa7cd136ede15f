// GEMM op group: C = alpha * op(A) * op(B) + beta * C, then (+bias per column, activation).
#pragma once
#include <cstdint>

namespace fastnn {
enum Act : int { kActNone = 0, kActRelu = 1 };

// Transposes and any row/column strides are expressed as element strides, so packing absorbs them
// (BLIS "general stride"): A(i,p) = A[i*rsa + p*csa], B(p,j) = B[p*rsb + j*csb], C(i,j) = C[i*ldc + j].
// op(A) is (M,K), op(B) is (K,N), C is (M,N). Strides may be any non-zero values (negative too).
// K == 0 gives C = beta*C (+ bias, act). beta == 0 means C is write-only (its NaNs are not propagated).
struct GemmParams {
  int64_t M, N, K;
  float alpha;
  const float* A; int64_t rsa, csa;
  const float* B; int64_t rsb, csb;
  float beta;
  float* C; int64_t ldc;
  const float* bias;   // (N,) or nullptr: added to every row after alpha*AB + beta*C
  int act;             // Act: applied last
};

struct GemmOps {
  void (*gemm)(const GemmParams& p);
};
}  // namespace fastnn
