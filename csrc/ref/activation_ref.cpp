// Reference pointwise activations: scalar, evaluated in double with <cmath>, the test oracle.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fastnn.h"

namespace fastnn {
namespace ref {
namespace {
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// One specialisation per UnaryOp (ops/unary_ops.h): forward(x) and backward(g, s), g = upstream
// gradient, s = saved y or x as the op's saves_output says.
template <int op>
struct Ref;  // no primary: an op without its reference does not compile

template <>
struct Ref<kRelu> {
  static double forward(double x, double) { return x < 0 ? 0.0 : x; }
  static double backward(double g, double y, double) { return y > 0 ? g : 0.0; }
};
template <>
struct Ref<kLeakyRelu> {
  static double forward(double x, double alpha) { return x < 0 ? alpha * x : x; }
  static double backward(double g, double x, double alpha) { return x > 0 ? g : alpha * g; }
};
template <>
struct Ref<kElu> {
  static double forward(double x, double alpha) { return x > 0 ? x : alpha * std::expm1(x); }
  static double backward(double g, double x, double alpha) { return x > 0 ? g : g * alpha * std::exp(x); }
};
template <>
struct Ref<kSelu> {
  static double forward(double x, double) { return double(kSeluScale) * (x > 0 ? x : double(kSeluAlpha) * std::expm1(x)); }
  static double backward(double g, double x, double) {
    return double(kSeluScale) * (x > 0 ? g : g * double(kSeluAlpha) * std::exp(x));
  }
};
template <>
struct Ref<kGelu> {
  static double forward(double x, double) { return x * normal_cdf(x); }
  static double backward(double g, double x, double) {
    return g * (normal_cdf(x) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI));
  }
};
template <>
struct Ref<kSilu> {
  static double forward(double x, double) { return x * sigmoid(x); }
  static double backward(double g, double x, double) { return g * (sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x)))); }
};
template <>
struct Ref<kSoftplus> {
  static double forward(double x, double) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }
  static double backward(double g, double x, double) { return g * sigmoid(x); }
};
template <>
struct Ref<kSigmoid> {
  static double forward(double x, double) { return sigmoid(x); }
  static double backward(double g, double y, double) { return g * y * (1.0 - y); }
};
template <>
struct Ref<kTanh> {
  static double forward(double x, double) { return std::tanh(x); }
  static double backward(double g, double y, double) { return g * (1.0 - y * y); }
};
template <>
struct Ref<kExp> {
  static double forward(double x, double) { return std::exp(x); }
  static double backward(double g, double y, double) { return g * y; }
};
template <>
struct Ref<kLog> {
  static double forward(double x, double) { return std::log(x); }
  static double backward(double g, double x, double) { return g / x; }
};
template <>
struct Ref<kSoftsign> {
  static double forward(double x, double) { return x / (1.0 + std::fabs(x)); }
  static double backward(double g, double x, double) { return g / ((1.0 + std::fabs(x)) * (1.0 + std::fabs(x))); }
};
template <>
struct Ref<kHardSigmoid> {
  static double forward(double x, double) { return std::clamp(x / 6.0 + 0.5, 0.0, 1.0); }
  static double backward(double g, double x, double) { return x > -3.0 && x < 3.0 ? g / 6.0 : 0.0; }
};
template <>
struct Ref<kRelu6> {
  static double forward(double x, double) { return std::clamp(x, 0.0, 6.0); }
  static double backward(double g, double x, double) { return x > 0.0 && x < 6.0 ? g : 0.0; }
};

template <int op>
void forward_op(float* y, const float* x, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i) y[i] = float(Ref<op>::forward(x[i], alpha));
}
template <int op>
void backward_op(float* dx, const float* dy, const float* s, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i) dx[i] = float(Ref<op>::backward(dy[i], s[i], alpha));
}

void unary_forward(int op, float* y, const float* x, int64_t n, float alpha) {
  visit_unary(op, [&](auto id) { forward_op<decltype(id)::value>(y, x, n, alpha); });
}

void unary_backward(int op, float* dx, const float* dy, const float* s, int64_t n, float alpha) {
  visit_unary(op, [&](auto id) { backward_op<decltype(id)::value>(dx, dy, s, n, alpha); });
}
}  // namespace

void fill_unary(EltOps& t) {
  t.unary_forward = unary_forward;
  t.unary_backward = unary_backward;
}
}  // namespace ref
}  // namespace fastnn
