// Reference pointwise activations: scalar, evaluated in double with <cmath>, the test oracle.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fastnn.h"
#include "ref/eltwise_ref.h"

namespace fastnn {
namespace ref {
namespace {
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

double forward1(int op, double x, double alpha) {
  switch (op) {
    case kRelu: return x < 0 ? 0.0 : x;
    case kLeakyRelu: return x < 0 ? alpha * x : x;
    case kElu: return x > 0 ? x : alpha * std::expm1(x);
    case kSelu: return double(kSeluScale) * (x > 0 ? x : double(kSeluAlpha) * std::expm1(x));
    case kGelu: return x * normal_cdf(x);
    case kSilu: return x * sigmoid(x);
    case kSoftplus: return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x)));
    case kSigmoid: return sigmoid(x);
    case kTanh: return std::tanh(x);
    case kExp: return std::exp(x);
    case kLog: return std::log(x);
  }
  return 0.0;
}

// g = upstream gradient, s = saved y (relu, sigmoid, tanh, exp) or x (the others).
double backward1(int op, double g, double s, double alpha) {
  switch (op) {
    case kRelu: return s > 0 ? g : 0.0;
    case kLeakyRelu: return s > 0 ? g : alpha * g;
    case kElu: return s > 0 ? g : g * alpha * std::exp(s);
    case kSelu: return double(kSeluScale) * (s > 0 ? g : g * double(kSeluAlpha) * std::exp(s));
    case kGelu: return g * (normal_cdf(s) + s * std::exp(-0.5 * s * s) / std::sqrt(2.0 * M_PI));
    case kSilu: return g * (sigmoid(s) * (1.0 + s * (1.0 - sigmoid(s))));
    case kSoftplus: return g * sigmoid(s);
    case kSigmoid: return g * s * (1.0 - s);
    case kTanh: return g * (1.0 - s * s);
    case kExp: return g * s;
    case kLog: return g / s;
  }
  return 0.0;
}

void unary_forward(int op, float* y, const float* x, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i) y[i] = float(forward1(op, x[i], alpha));
}

void unary_backward(int op, float* dx, const float* dy, const float* s, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i) dx[i] = float(backward1(op, dy[i], s[i], alpha));
}
}  // namespace

void fill_elt(EltOps& t) {
  t.unary_forward = unary_forward;
  t.unary_backward = unary_backward;
  fill_softmax(t);
  fill_loss(t);
  fill_dropout(t);
}
}  // namespace ref
}  // namespace fastnn
