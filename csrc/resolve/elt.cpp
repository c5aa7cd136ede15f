// Checks of the elementwise group: softmax's axis split, the cross-entropies' logits and targets,
// dropout's rate.
#include <cmath>

#include "resolve/resolve.h"

namespace fastnn {
AxisSplit resolve_softmax_axis(const Shape& x, int axis, const std::string& name) {
  const int nd = int(x.size());
  FASTNN_CHECK(nd >= 1, name + ": expected at least 1 dimension, got a scalar");
  FASTNN_CHECK(axis >= -nd && axis < nd,
               name + ": axis " + std::to_string(axis) + " is out of range for shape " + shape_str(x));
  if (axis < 0) axis += nd;
  AxisSplit r{1, x[size_t(axis)], 1};
  for (int d = 0; d < axis; ++d) r.outer *= x[size_t(d)];
  for (int d = axis + 1; d < nd; ++d) r.inner *= x[size_t(d)];
  return r;
}

void check_rows(const Shape& x, const std::string& name, const char* what) {
  FASTNN_CHECK(x.size() == 2 && x[1] > 0, name + ": " + what + " must be 2-D (batch, classes), got " + shape_str(x));
}

bool sparse_target(const Shape& t, int64_t B, int64_t K, const std::string& name) {
  if (t.size() == 2 && t[0] == B && t[1] == K && K != 1) return false;
  FASTNN_CHECK((t.size() == 1 && t[0] == B) || (t.size() == 2 && t[0] == B && t[1] == 1),
               name + ": labels have shape " + shape_str(t) + ", expected (" + std::to_string(B) + ",) or (" +
                   std::to_string(B) + ", 1) to match logits with " + std::to_string(B) + " rows");
  return true;
}

int32_t resolve_class_id(double v, const std::string& shown, int64_t b, int64_t K, const std::string& name) {
  FASTNN_CHECK(std::isfinite(v) && v == std::floor(v),
               name + ": label at index " + std::to_string(b) + " is not an integer class id: " + shown);
  FASTNN_CHECK(v >= 0 && v < double(K), name + ": label " + std::to_string(int64_t(v)) + " at index " +
                                            std::to_string(b) + " is out of range [0, " + std::to_string(K) +
                                            ") for logits with " + std::to_string(K) + " classes");
  return int32_t(v);
}

bool resolve_row_grads(const Shape& g, int64_t B, const std::string& name) {
  int64_t n = 1;
  for (int64_t d : g) n *= d;
  if (n == 1 && B != 1) return true;
  FASTNN_CHECK(n == B, name + ": dloss has shape " + shape_str(g) + ", expected a scalar or (" + std::to_string(B) +
                           ",)");
  return false;
}

void check_lse(const Shape& lse, int64_t B, const std::string& name) {
  int64_t n = 1;
  for (int64_t d : lse) n *= d;
  FASTNN_CHECK(n == B, name + ": lse has shape " + shape_str(lse) + ", expected (" + std::to_string(B) + ",)");
}

void check_dropout_rate(double rate) {
  FASTNN_CHECK(rate >= 0.0 && rate < 1.0, "dropout: rate must be in [0, 1), got " + std::to_string(rate));
}
}  // namespace fastnn
