// Reference kernels of the elementwise group that the ISA tables reuse as they are (small,
// cold ops: the probability-input and pointwise losses).
#pragma once
#include <cstdint>

#include "fastnn.h"

namespace fastnn {
namespace ref {
void prob_xent_forward(float* loss, const float* p, const int32_t* labels, const float* target, int64_t B,
                       int64_t K, float eps);
void prob_xent_backward(float* dp, const float* dloss, const float* p, const int32_t* labels, const float* target,
                        int64_t B, int64_t K, float eps);
double point_loss_forward(int kind, const float* p, const float* y, int64_t n, float eps);
void point_loss_backward(int kind, float* dp, const float* p, const float* y, int64_t n, float scale, float eps);
}  // namespace ref
}  // namespace fastnn
