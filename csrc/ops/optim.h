// Optimizer-update op group: one fused in-place update per parameter tensor, Keras 3's rules
// (keras/src/optimizers/*.py) evaluated in float32 in Keras's operation order.
//
// Every update first applies Keras's decoupled weight decay when weight_decay != 0
// (base_optimizer._apply_weight_decay: p = p - p * wd * lr), so AdamW is adam_update with
// weight_decay > 0. Slots (optimizer state, same size as the parameter) per optimizer:
//   sgd_update      s1 = momentum (nullptr when momentum == 0)
//   adam_update     s1 = m, s2 = v, s3 = v_hat (amsgrad; nullptr otherwise)
//   rmsprop_update  s1 = velocity, s2 = momentum (nullptr when momentum == 0),
//                   s3 = average gradient (nullptr unless centered)
//   adagrad_update  s1 = accumulator (the caller initialises it, Keras: 0.1)
//   adadelta_update s1 = accumulated grad, s2 = accumulated delta
//   nadam_update    s1 = momentum, s2 = velocity (u_product: the running product of the mu_t,
//                   this step's included, kept by the caller as Keras keeps its variable)
//   adamax_update   s1 = momentum m, s2 = exponentially weighted infinity norm u
//   lion_update     s1 = momentum
//   ftrl_update     s1 = accumulator (the caller initialises it, Keras: 0.1), s2 = linear
// (Adafactor's factored second moments are row/column means, done in numpy: fastnn/optimizers.py.)
// The per-element rules live here (static inline, FASTNN_HD) so the reference, the ISA kernels and the CUDA
// kernels (csrc/cuda/optim.cu) share them;
// the float64 replay in tests/test_optimizer_kernels.py is the independent oracle.
#pragma once
#include <cmath>
#include <cstdint>

#include "ops/hd.h"

namespace fastnn {
// Hyper-parameters as Python gives them (double); step is 1-based (Keras iterations + 1).
struct OptimHyper {
  double learning_rate = 0.001, weight_decay = 0.0;
  double momentum = 0.0;             // SGD, RMSprop
  int nesterov = 0;                  // SGD
  double beta_1 = 0.9, beta_2 = 0.999;  // Adam
  double rho = 0.9;                  // RMSprop, Adadelta
  int centered = 0;                  // RMSprop
  double epsilon = 1e-7;
  int64_t step = 1;                  // Adam, Nadam, Adamax
  double u_product = 1.0;            // Nadam
  double lr_power = -0.5, l1 = 0.0, l2 = 0.0, l2_shrinkage = 0.0, beta = 0.0;  // Ftrl
};

using OptimUpdateFn = void (*)(const OptimHyper& h, float* param, const float* grad, float* s1, float* s2, float* s3,
                               int64_t n);

struct OptimOps {
  OptimUpdateFn sgd_update, adam_update, rmsprop_update, adagrad_update, adadelta_update;
  OptimUpdateFn nadam_update, adamax_update, lion_update, ftrl_update;
};

// The rules by number: how the bindings (bind/optim_defs.h) name an update to a backend.
enum OptimRule : int {
  kRuleSgd = 0, kRuleAdam, kRuleRmsprop, kRuleAdagrad, kRuleAdadelta, kRuleNadam, kRuleAdamax, kRuleLion, kRuleFtrl
};
inline OptimUpdateFn rule_fn(const OptimOps& o, int rule) {
  const OptimUpdateFn fns[] = {o.sgd_update,   o.adam_update,   o.rmsprop_update, o.adagrad_update, o.adadelta_update,
                               o.nadam_update, o.adamax_update, o.lion_update,    o.ftrl_update};
  return fns[rule];
}

namespace optim_rules {
// NOTE: static (internal linkage): included by the ISA files, compiled once per ISA.
// Python floats meet float32 tensors in Keras, so constants like (1 - beta_1) are formed in double
// and rounded once to float; lr, beta powers, alpha are float32 tensor ops.
struct Consts {
  float lr, wd, mu, b1c, b2c, alpha, rho, rhoc, eps;
  int nesterov, centered;
  // Nadam / Lion cast beta to float32 before "1 - beta" (a float32 subtraction, unlike Adam's);
  // nadam_*: mu_{t+1} / (1 - u_product mu_{t+1}), (1 - mu_t) / (1 - u_product) factors' parts.
  float b1, b2, b1cf, b2cf, nadam_u1, nadam_den1, nadam_u0c, nadam_den0, b2_corr, b1_corr;
  float lr_power, l1, l2reg, shrink2;  // Ftrl: l2reg = l2 + beta / (2 lr), shrink2 = 2 l2_shrinkage
};
static inline Consts consts(const OptimHyper& h) {
  Consts c;
  c.lr = float(h.learning_rate);
  c.wd = float(h.weight_decay);
  c.mu = float(h.momentum);
  c.b1c = float(1.0 - h.beta_1);
  c.b2c = float(1.0 - h.beta_2);
  const float t = float(h.step);
  const float b1p = std::pow(float(h.beta_1), t), b2p = std::pow(float(h.beta_2), t);
  c.alpha = c.lr * std::sqrt(1.0f - b2p) / (1.0f - b1p);
  c.rho = float(h.rho);
  c.rhoc = float(1.0 - h.rho);
  c.eps = float(h.epsilon);
  c.nesterov = h.nesterov;
  c.centered = h.centered;
  c.b1 = float(h.beta_1);
  c.b2 = float(h.beta_2);
  c.b1cf = 1.0f - c.b1;
  c.b2cf = 1.0f - c.b2;
  const float u0 = c.b1 * (1.0f - 0.5f * std::pow(0.96f, t));         // mu_t
  const float u1 = c.b1 * (1.0f - 0.5f * std::pow(0.96f, t + 1.0f));  // mu_{t+1}
  const float up = float(h.u_product);
  c.nadam_u1 = u1;
  c.nadam_den1 = 1.0f - up * u1;
  c.nadam_u0c = 1.0f - u0;
  c.nadam_den0 = 1.0f - up;
  c.b2_corr = 1.0f - std::pow(c.b2, t);  // Nadam: v_hat = v / (1 - beta_2^t)
  c.b1_corr = 1.0f - std::pow(c.b1, t);  // Adamax: lr m / ((1 - beta_1^t)(u + eps))
  c.lr_power = float(h.lr_power);
  c.l1 = float(h.l1);
  c.l2reg = float(h.l2) + float(h.beta) / (2.0f * c.lr);
  c.shrink2 = float(2.0 * h.l2_shrinkage);
  return c;
}
FASTNN_HD static inline float decay(const Consts& c, float p) { return c.wd != 0.0f ? p - p * c.wd * c.lr : p; }

FASTNN_HD static inline void sgd(const Consts& c, float* p, const float* g, float* s1, float*, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  if (!s1) { p[i] = pi - g[i] * c.lr; return; }
  const float m = s1[i] * c.mu - g[i] * c.lr;
  s1[i] = m;
  p[i] = c.nesterov ? pi + (m * c.mu - g[i] * c.lr) : pi + m;
}
// Adam's moving averages m += (g - m)(1 - beta_1), v += (g^2 - v)(1 - beta_2), stored and returned.
FASTNN_HD static inline void moments(float b1c, float b2c, float g, float* s1, float* s2, int64_t i, float& m, float& v) {
  m = s1[i] + (g - s1[i]) * b1c;
  v = s2[i] + (g * g - s2[i]) * b2c;
  s1[i] = m;
  s2[i] = v;
}
FASTNN_HD static inline void adam(const Consts& c, float* p, const float* g, float* s1, float* s2, float* s3, int64_t i) {
  const float pi = decay(c, p[i]);
  float m, v;
  moments(c.b1c, c.b2c, g[i], s1, s2, i, m, v);
  if (s3) {  // amsgrad: the running maximum of v replaces v
    v = s3[i] > v ? s3[i] : v;
    s3[i] = v;
  }
  p[i] = pi - (m * c.alpha) / (std::sqrt(v) + c.eps);
}
FASTNN_HD static inline void rmsprop(const Consts& c, float* p, const float* g, float* s1, float* s2, float* s3, int64_t i) {
  const float pi = decay(c, p[i]);
  const float v = c.rho * s1[i] + c.rhoc * (g[i] * g[i]);
  s1[i] = v;
  float denom = v + c.eps;
  if (s3) {
    const float a = c.rho * s3[i] + c.rhoc * g[i];
    s3[i] = a;
    denom = (v - a * a) + c.eps;
  }
  const float inc = (c.lr * g[i]) / std::sqrt(denom);
  if (s2) {
    const float m = c.mu * s2[i] + inc;
    s2[i] = m;
    p[i] = pi - m;
  } else {
    p[i] = pi - inc;
  }
}
FASTNN_HD static inline void adagrad(const Consts& c, float* p, const float* g, float* s1, float*, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  const float acc = s1[i] + g[i] * g[i];
  s1[i] = acc;
  p[i] = pi - (c.lr * g[i]) / std::sqrt(acc + c.eps);
}
FASTNN_HD static inline void adadelta(const Consts& c, float* p, const float* g, float* s1, float* s2, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  const float ag = c.rho * s1[i] + c.rhoc * (g[i] * g[i]);
  s1[i] = ag;
  const float delta = -((std::sqrt(s2[i] + c.eps) * g[i]) / std::sqrt(ag + c.eps));
  s2[i] = c.rho * s2[i] + c.rhoc * (delta * delta);
  p[i] = pi + c.lr * delta;
}

FASTNN_HD static inline void nadam(const Consts& c, float* p, const float* g, float* s1, float* s2, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  float m, v;
  moments(c.b1cf, c.b2cf, g[i], s1, s2, i, m, v);
  const float m_hat = (c.nadam_u1 * m) / c.nadam_den1 + (c.nadam_u0c * g[i]) / c.nadam_den0;
  const float v_hat = v / c.b2_corr;
  p[i] = pi - (m_hat * c.lr) / (std::sqrt(v_hat) + c.eps);
}
FASTNN_HD static inline void adamax(const Consts& c, float* p, const float* g, float* s1, float* s2, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  const float m = s1[i] + (g[i] - s1[i]) * c.b1c;
  const float decayed = c.b2 * s2[i], ag = std::fabs(g[i]);
  const float u = decayed > ag ? decayed : ag;  // max without fmax's NaN rules, which block vectorisation
  s1[i] = m;
  s2[i] = u;
  p[i] = pi - (c.lr * m) / (c.b1_corr * (u + c.eps));
}
FASTNN_HD static inline void lion(const Consts& c, float* p, const float* g, float* s1, float*, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  const float d = s1[i] * c.b1 + g[i] * c.b1cf;
  const float sign = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
  p[i] = pi - c.lr * sign;
  s1[i] = s1[i] * c.b2 + g[i] * c.b2cf;
}
// Ftrl with n^-lr_power computed by Power (std::pow in general; sqrt for Keras's default lr_power -0.5,
// which vectorises where pow does not).
template <float (*Power)(float, float)>
FASTNN_HD static inline void ftrl_with(const Consts& c, float* p, const float* g, float* s1, float* s2, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  const float use = g[i] + c.shrink2 * pi;
  const float acc = s1[i], acc_new = acc + g[i] * g[i];
  const float pow_new = Power(acc_new, -c.lr_power);
  const float lin = s2[i] + (use - ((pow_new - Power(acc, -c.lr_power)) / c.lr) * pi);
  s2[i] = lin;
  const float quadratic = pow_new / c.lr + 2.0f * c.l2reg;
  const float clipped = lin < -c.l1 ? -c.l1 : (lin > c.l1 ? c.l1 : lin);
  p[i] = (clipped - lin) / quadratic;
  s1[i] = acc_new;
}
FASTNN_HD static inline float pow_any(float x, float e) { return std::pow(x, e); }
FASTNN_HD static inline float pow_half(float x, float) { return std::sqrt(x); }

// Fills t with Update<rule>::run for every rule: backends differ only in their Update loop.
template <template <auto> class Update>
static inline void fill_rules(OptimOps& t) {
  t.sgd_update = Update<sgd>::run;
  t.adam_update = Update<adam>::run;
  t.rmsprop_update = Update<rmsprop>::run;
  t.adagrad_update = Update<adagrad>::run;
  t.adadelta_update = Update<adadelta>::run;
  t.nadam_update = Update<nadam>::run;
  t.adamax_update = Update<adamax>::run;
  t.lion_update = Update<lion>::run;
  t.ftrl_update = [](const OptimHyper& h, float* p, const float* g, float* s1, float* s2, float* s3, int64_t n) {
    (h.lr_power == -0.5 ? Update<ftrl_with<pow_half>>::run : Update<ftrl_with<pow_any>>::run)(h, p, g, s1, s2, s3, n);
  };
}
}  // namespace optim_rules
}  // namespace fastnn
