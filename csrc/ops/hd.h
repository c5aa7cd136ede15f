// FASTNN_HD marks the scalar rules that the CPU kernels and the CUDA kernels share (Philox, optimizer
// updates): __host__ __device__ under nvcc, nothing for the C++ compilers, so both backends run one text.
#pragma once
#ifdef __CUDACC__
#define FASTNN_HD __host__ __device__
#else
#define FASTNN_HD
#endif
