// Convolution and pooling geometry: "valid" or "same" padding with the TF rule (out = ceil(in/stride),
// pad_total = max((out-1)*s + (k-1)*d + 1 - in, 0), pad_before = pad_total // 2, the extra cell at
// bottom/right), and every shape checked, so the kernels never see a window that reads outside x.
// Convolutions also take "causal" (Keras Conv1D): all the padding, (k-1)*d cells, before the input, so
// output i sees inputs <= i*s only; out = ceil(in/stride). The kernels already skip any tap outside x.
#include <algorithm>
#include <cctype>
#include <cstdint>

#include "resolve/resolve.h"

namespace fastnn {
namespace {
// Output size and leading pad of one spatial axis (in >= 1); throws `what` when a valid window does not
// fit, `huge` when the dilated window overflows int64. Written so that no intermediate overflows for
// any stride: (out - 1) * s <= in - 1.
void axis(int64_t in, int64_t k, int64_t s, int64_t d, bool same, int64_t& out, int64_t& pad, const std::string& what,
          const std::string& huge, bool causal = false) {
  int64_t span;  // the dilated window (k - 1) * d + 1, below INT64_MAX / 4 so kernels can add offsets to it
  FASTNN_CHECK(!__builtin_mul_overflow(k - 1, d, &span) && span < INT64_MAX / 4, huge);
  span += 1;
  if (causal) {
    out = (in - 1) / s + 1;
    pad = span - 1;
  } else if (same) {
    out = (in - 1) / s + 1;
    pad = std::max<int64_t>(span - (in - (out - 1) * s), 0) / 2;
  } else {
    FASTNN_CHECK(span <= in, what);
    out = (in - span) / s + 1;
    pad = 0;
  }
}
}  // namespace

void check_nhwc(const Shape& x, const std::string& op, const char* arg) {
  FASTNN_CHECK(x.size() == 4,
               op + ": " + arg + " must be 4-D (batch, height, width, channels), got shape " + shape_str(x));
  for (int ax = 0; ax < 4; ++ax)
    FASTNN_CHECK(x[ax] > 0, op + ": " + arg + " must not be empty, got shape " + shape_str(x));
}

void check_conv2d_operands(const Shape& x, const Shape& k, const std::string& op) {
  check_nhwc(x, op, "x");
  FASTNN_CHECK(k.size() == 4, op + ": kernel must be 4-D (kh, kw, in_channels, out_channels), got shape " + shape_str(k));
  for (int ax = 0; ax < 4; ++ax)
    FASTNN_CHECK(k[ax] > 0, op + ": kernel must not be empty, got shape " + shape_str(k));
  FASTNN_CHECK(k[2] == x[3], op + ": kernel " + shape_str(k) + " expects " + std::to_string(k[2]) +
                                 " input channels but x " + shape_str(x) + " has " + std::to_string(x[3]));
}

bool same_padding(std::string s, const std::string& op) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  FASTNN_CHECK(s == "valid" || s == "same", op + ": padding must be 'valid' or 'same', got '" + s + "'");
  return s == "same";
}

Conv2dParams resolve_conv2d(const Shape& x, const Shape& k, Pair s, const std::string& padding, Pair d,
                            const std::string& op) {
  check_conv2d_operands(x, k, op);
  std::string mode = padding;
  std::transform(mode.begin(), mode.end(), mode.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  const bool causal = mode == "causal";
  const bool same = !causal && same_padding(padding, op);
  Conv2dParams p{};
  p.B = x[0]; p.H = x[1]; p.W = x[2]; p.C = x[3];
  p.KH = k[0]; p.KW = k[1]; p.OC = k[3];
  p.SH = s[0]; p.SW = s[1]; p.DH = d[0]; p.DW = d[1];
  const std::string big = op + ": kernel " + shape_str(k) + " with dilation_rate (" + std::to_string(d[0]) + ", " +
                          std::to_string(d[1]) + ") is larger than the input " + shape_str(x) + " with padding 'valid'";
  const std::string huge = op + ": dilation_rate (" + std::to_string(d[0]) + ", " + std::to_string(d[1]) +
                           ") is too large for kernel " + shape_str(k) + ": the dilated window overflows";
  axis(p.H, p.KH, p.SH, p.DH, same, p.OH, p.pad_top, big, huge, causal);
  axis(p.W, p.KW, p.SW, p.DW, same, p.OW, p.pad_left, big, huge, causal);
  return p;
}

Pool2dParams resolve_pool2d(const Shape& x, Pair k, std::optional<Pair> strides, const std::string& padding,
                            const std::string& op) {
  const Pair s = strides.value_or(k);
  const bool same = same_padding(padding, op);
  Pool2dParams p{};
  p.B = x[0]; p.H = x[1]; p.W = x[2]; p.C = x[3];
  p.KH = k[0]; p.KW = k[1]; p.SH = s[0]; p.SW = s[1];
  const std::string big = op + ": pool_size (" + std::to_string(k[0]) + ", " + std::to_string(k[1]) +
                          ") is larger than the input " + shape_str(x) + " with padding 'valid'";
  // pool sizes are bounded by the binding, so a window of k cells never overflows
  axis(p.H, p.KH, p.SH, 1, same, p.OH, p.pad_top, big, big);
  axis(p.W, p.KW, p.SW, 1, same, p.OW, p.pad_left, big, big);
  return p;
}
}  // namespace fastnn
