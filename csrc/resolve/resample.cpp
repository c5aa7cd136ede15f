// Argument resolution of the image resample op (ops/resample.h).
#include <algorithm>
#include <cmath>

#include "resolve/resolve.h"

namespace fastnn {
namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}
}  // namespace

ResampleParams resolve_resample(const Shape& x, const Shape& t, int64_t OH, int64_t OW,
                                const std::string& interpolation, const std::string& fill_mode, float fill_value,
                                const std::string& op) {
  check_nhwc(x, op, "images");
  FASTNN_CHECK(t.size() == 2 && t[1] == 8 && (t[0] == x[0] || t[0] == 1),
               op + ": transforms must have shape (" + std::to_string(x[0]) + ", 8) or (1, 8) for images " +
                   shape_str(x) + ", got " + shape_str(t));
  FASTNN_CHECK(OH >= 1 && OW >= 1, op + ": output size must be >= 1, got (" + std::to_string(OH) + ", " +
                                       std::to_string(OW) + ")");
  // every element count (input and output) fits int64 with room for the kernels' index arithmetic
  int64_t n = 0;
  FASTNN_CHECK(!__builtin_mul_overflow(x[0], OH, &n) && !__builtin_mul_overflow(n, OW, &n) &&
                   !__builtin_mul_overflow(n, x[3], &n) && n < INT64_MAX / 4,
               op + ": output (" + std::to_string(x[0]) + ", " + std::to_string(OH) + ", " + std::to_string(OW) +
                   ", " + std::to_string(x[3]) + ") is too large");
  const std::string interp = lower(interpolation), fill = lower(fill_mode);
  FASTNN_CHECK(interp == "nearest" || interp == "bilinear",
               op + ": interpolation must be 'nearest' or 'bilinear', got '" + interpolation + "'");
  int mode = -1;
  if (fill == "reflect") mode = kFillReflect;
  if (fill == "wrap") mode = kFillWrap;
  if (fill == "constant") mode = kFillConstant;
  if (fill == "nearest") mode = kFillNearest;
  FASTNN_CHECK(mode >= 0, op + ": fill_mode must be 'reflect', 'wrap', 'constant' or 'nearest', got '" + fill_mode +
                              "'");
  ResampleParams p{};
  p.B = x[0];
  p.H = x[1];
  p.W = x[2];
  p.C = x[3];
  p.OH = OH;
  p.OW = OW;
  p.tstride = t[0] == 1 ? 0 : 8;
  p.interpolation = interp == "nearest" ? kInterpNearest : kInterpBilinear;
  p.fill_mode = mode;
  p.fill_value = fill_value;
  return p;
}
}  // namespace fastnn
