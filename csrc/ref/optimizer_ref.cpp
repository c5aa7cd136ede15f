// Reference optimizer updates: a serial loop over the shared per-element rules of ops/optim.h.
#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
template <auto Rule>
void update(const OptimHyper& h, float* p, const float* g, float* s1, float* s2, float* s3, int64_t n) {
  const optim_rules::Consts c = optim_rules::consts(h);
  for (int64_t i = 0; i < n; ++i) Rule(c, p, g, s1, s2, s3, i);
}
}  // namespace

void fill_optim(OptimOps& t) {
  t.sgd_update = update<optim_rules::sgd>;
  t.adam_update = update<optim_rules::adam>;
  t.rmsprop_update = update<optim_rules::rmsprop>;
  t.adagrad_update = update<optim_rules::adagrad>;
  t.adadelta_update = update<optim_rules::adadelta>;
}
}  // namespace ref
}  // namespace fastnn
