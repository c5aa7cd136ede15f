// Optimizer updates fused over all parameters: one launch updates up to kOptimJobs tensors (the job list
// travels as a kernel argument, so the launch needs no copy and can be captured in a CUDA graph).
// The scalar constants come from optim_rules::consts (csrc/ops/optim.h, host code, shared with the CPU);
// the per-element rules below are that header's rules, word for word, in device code (the header's are
// host-only inline functions).
#include <cuda_runtime.h>

#include "cuda/kernels.h"

namespace fastnn {
namespace cuda {
namespace {
using optim_rules::Consts;
struct Jobs {
  OptimJob j[kOptimJobs];
};

__device__ inline float decayed(const Consts& c, float p) { return c.wd != 0.0f ? p - p * c.wd * c.lr : p; }

__device__ inline void rule_at(int rule, const Consts& c, float* p, const float* g, float* s1, float* s2, float* s3,
                               int64_t i) {
  const float pi = decayed(c, p[i]);
  switch (rule) {
    case kSgd: {
      if (!s1) { p[i] = pi - g[i] * c.lr; return; }
      const float m = s1[i] * c.mu - g[i] * c.lr;
      s1[i] = m;
      p[i] = c.nesterov ? pi + (m * c.mu - g[i] * c.lr) : pi + m;
      return;
    }
    case kAdam: {
      const float m = s1[i] + (g[i] - s1[i]) * c.b1c;
      const float v = s2[i] + (g[i] * g[i] - s2[i]) * c.b2c;
      s1[i] = m;
      s2[i] = v;
      p[i] = pi - (m * c.alpha) / (sqrtf(v) + c.eps);
      return;
    }
    case kRmsprop: {
      const float v = c.rho * s1[i] + c.rhoc * (g[i] * g[i]);
      s1[i] = v;
      float denom = v + c.eps;
      if (s3) {
        const float a = c.rho * s3[i] + c.rhoc * g[i];
        s3[i] = a;
        denom = (v - a * a) + c.eps;
      }
      const float inc = (c.lr * g[i]) / sqrtf(denom);
      if (s2) {
        const float m = c.mu * s2[i] + inc;
        s2[i] = m;
        p[i] = pi - m;
      } else {
        p[i] = pi - inc;
      }
      return;
    }
    case kAdagrad: {
      const float acc = s1[i] + g[i] * g[i];
      s1[i] = acc;
      p[i] = pi - (c.lr * g[i]) / sqrtf(acc + c.eps);
      return;
    }
    case kAdadelta: {
      const float ag = c.rho * s1[i] + c.rhoc * (g[i] * g[i]);
      s1[i] = ag;
      const float delta = -((sqrtf(s2[i] + c.eps) * g[i]) / sqrtf(ag + c.eps));
      s2[i] = c.rho * s2[i] + c.rhoc * (delta * delta);
      p[i] = pi + c.lr * delta;
      return;
    }
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
