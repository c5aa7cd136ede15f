// Optimizer updates: the per-element Keras rules of ops/optim.h over parallel chunks; the compiler
// vectorises each rule (sqrt and division included: -fno-math-errno).
#include "fastnn.h"
#include "parallel.h"

namespace fastnn {
namespace CPU_CAPABILITY {
namespace {
// Elements per task below which an update stays serial: most layers' parameters are smaller, and
// a step updates them one after another (an OpenMP fork costs about as much as 10-30K updates).
constexpr int64_t kGrain = 32 * 1024;

template <auto Rule>
struct Update {
  static void run(const OptimHyper& h, float* p, const float* g, float* s1, float* s2, float* s3, int64_t n) {
    const optim_rules::Consts c = optim_rules::consts(h);
    parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) Rule(c, p, g, s1, s2, s3, i);
    });
  }
};
}  // namespace

void fill_optim(OptimOps& t) { optim_rules::fill_rules<Update>(t); }
}  // namespace CPU_CAPABILITY
}  // namespace fastnn
