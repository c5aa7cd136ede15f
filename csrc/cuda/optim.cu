// Optimizer updates fused over all parameters: one launch updates up to kOptimJobs tensors (the job list
// travels as a kernel argument, so the launch needs no copy and can be captured in a CUDA graph).
// The scalar constants (optim_rules::consts) and the per-element rules are csrc/ops/optim.h's, shared
// with the CPU kernels (the rules are FASTNN_HD: host and device code from one text).
#include <cuda_runtime.h>

#include "cuda/kernels.h"

namespace fastnn {
namespace cuda {
namespace {
using optim_rules::Consts;
struct Jobs {
  OptimJob j[kOptimJobs];
};

// The rules of csrc/ops/optim.h (FASTNN_HD: compiled for the device too), so updates equal the CPU's.
__device__ inline void rule_at(int rule, const Consts& c, float* p, const float* g, float* s1, float* s2, float* s3,
                               int64_t i) {
  using namespace optim_rules;
  switch (rule) {
    case kRuleSgd: return sgd(c, p, g, s1, s2, s3, i);
    case kRuleAdam: return adam(c, p, g, s1, s2, s3, i);
    case kRuleRmsprop: return rmsprop(c, p, g, s1, s2, s3, i);
    case kRuleAdagrad: return adagrad(c, p, g, s1, s2, s3, i);
    case kRuleAdadelta: return adadelta(c, p, g, s1, s2, s3, i);
    case kRuleNadam: return nadam(c, p, g, s1, s2, s3, i);
    case kRuleAdamax: return adamax(c, p, g, s1, s2, s3, i);
    case kRuleLion: return lion(c, p, g, s1, s2, s3, i);
    case kRuleFtrl:  // sqrt for Keras's default power -0.5, as the CPU table picks
      return c.lr_power == -0.5f ? ftrl_with<pow_half>(c, p, g, s1, s2, s3, i) : ftrl_with<pow_any>(c, p, g, s1, s2, s3, i);
  }
}

// blockIdx.y = job; blocks along x stride over that job's elements.
__global__ void optim_k(int rule, Consts c, Jobs jobs) {
  const OptimJob& j = jobs.j[blockIdx.y];
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < j.n; i += int64_t(gridDim.x) * blockDim.x)
    rule_at(rule, c, j.p, j.g, j.s[0], j.s[1], j.s[2], i);
}
}  // namespace

void optim_update(int rule, const OptimHyper& h, const OptimJob* jobs, int njobs) {
  // NOTE: IEEE sqrt/div as the CPU (nvcc's default -prec-sqrt=true -prec-div=true keeps them exact).
  const Consts c = optim_rules::consts(h);
  for (int start = 0; start < njobs; start += kOptimJobs) {
    Jobs js{};
    const int m = njobs - start < kOptimJobs ? njobs - start : kOptimJobs;
    int64_t most = 1;
    for (int k = 0; k < m; ++k) {
      js.j[k] = jobs[start + k];
      most = js.j[k].n > most ? js.j[k].n : most;
    }
    const int64_t bx = (most + 255) / 256;
    optim_k<<<dim3(unsigned(bx < 4096 ? bx : 4096), unsigned(m)), 256, 0, launch_stream()>>>(rule, c, js);
  }
}
}  // namespace cuda
}  // namespace fastnn
