// Reference optimizer updates: a serial loop over the shared per-element rules of ops/optim.h.
#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
template <auto Rule>
struct Update {
  static void run(const OptimHyper& h, float* p, const float* g, float* s1, float* s2, float* s3, int64_t n) {
    const optim_rules::Consts c = optim_rules::consts(h);
    for (int64_t i = 0; i < n; ++i) Rule(c, p, g, s1, s2, s3, i);
  }
};
}  // namespace

void fill_optim(OptimOps& t) { optim_rules::fill_rules<Update>(t); }
}  // namespace ref
}  // namespace fastnn
