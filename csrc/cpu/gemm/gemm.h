// This ISA's GEMM entry point, for other kernels of the same ISA (conv as GEMM, linear).
// Runs serially when called from inside a parallel region (parallel_for never nests).
// NOTE: gemm() uses the two highest scratch slots (kScratchSlots-2 and -1) of the calling thread:
// a caller must keep its own buffers (im2col, ...) in lower slots.
#pragma once
#include "fastnn.h"

namespace fastnn {
namespace CPU_CAPABILITY {
void gemm(const GemmParams& p);
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
