#include "resolve/resolve.h"

namespace fastnn {
std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

void check_shape(const Shape& s, const Shape& want, const std::string& what) {
  FASTNN_CHECK(s == want, what + " has shape " + shape_str(s) + ", expected " + shape_str(want));
}

void check_same_shape(const Shape& a, const Shape& b, const std::string& what) {
  FASTNN_CHECK(a == b, what + " have different shapes: " + shape_str(a) + " and " + shape_str(b));
}
}  // namespace fastnn
