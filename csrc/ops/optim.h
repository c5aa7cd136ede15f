// Optimizer-update op group: one fused in-place update per parameter tensor, Keras 3's rules
// (keras/src/optimizers/*.py) evaluated in float32 in Keras's operation order.
//
// Every update first applies Keras's decoupled weight decay when weight_decay != 0
// (base_optimizer._apply_weight_decay: p = p - p * wd * lr), so AdamW is adam_update with
// weight_decay > 0. Slots (optimizer state, same size as the parameter) per optimizer:
//   sgd_update      s1 = momentum (nullptr when momentum == 0)
//   adam_update     s1 = m, s2 = v
//   rmsprop_update  s1 = velocity, s2 = momentum (nullptr when momentum == 0),
//                   s3 = average gradient (nullptr unless centered)
//   adagrad_update  s1 = accumulator (the caller initialises it, Keras: 0.1)
//   adadelta_update s1 = accumulated grad, s2 = accumulated delta
// The per-element rules live here (static inline) so the reference and the ISA kernels share them;
// the float64 replay in tests/test_optimizer_kernels.py is the independent oracle.
#pragma once
#include <cmath>
#include <cstdint>

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
  int64_t step = 1;                  // Adam
};

using OptimUpdateFn = void (*)(const OptimHyper& h, float* param, const float* grad, float* s1, float* s2, float* s3,
                               int64_t n);

struct OptimOps {
  OptimUpdateFn sgd_update, adam_update, rmsprop_update, adagrad_update, adadelta_update;
};

namespace optim_rules {
// NOTE: static (internal linkage): included by the ISA files, compiled once per ISA.
// Python floats meet float32 tensors in Keras, so constants like (1 - beta_1) are formed in double
// and rounded once to float; lr, beta powers, alpha are float32 tensor ops.
struct Consts {
  float lr, wd, mu, b1c, b2c, alpha, rho, rhoc, eps;
  int nesterov, centered;
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
  return c;
}
static inline float decay(const Consts& c, float p) { return c.wd != 0.0f ? p - p * c.wd * c.lr : p; }

static inline void sgd(const Consts& c, float* p, const float* g, float* s1, float*, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  if (!s1) { p[i] = pi - g[i] * c.lr; return; }
  const float m = s1[i] * c.mu - g[i] * c.lr;
  s1[i] = m;
  p[i] = c.nesterov ? pi + (m * c.mu - g[i] * c.lr) : pi + m;
}
static inline void adam(const Consts& c, float* p, const float* g, float* s1, float* s2, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  const float m = s1[i] + (g[i] - s1[i]) * c.b1c;
  const float v = s2[i] + (g[i] * g[i] - s2[i]) * c.b2c;
  s1[i] = m;
  s2[i] = v;
  p[i] = pi - (m * c.alpha) / (std::sqrt(v) + c.eps);
}
static inline void rmsprop(const Consts& c, float* p, const float* g, float* s1, float* s2, float* s3, int64_t i) {
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
static inline void adagrad(const Consts& c, float* p, const float* g, float* s1, float*, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  const float acc = s1[i] + g[i] * g[i];
  s1[i] = acc;
  p[i] = pi - (c.lr * g[i]) / std::sqrt(acc + c.eps);
}
static inline void adadelta(const Consts& c, float* p, const float* g, float* s1, float* s2, float*, int64_t i) {
  const float pi = decay(c, p[i]);
  const float ag = c.rho * s1[i] + c.rhoc * (g[i] * g[i]);
  s1[i] = ag;
  const float delta = -((std::sqrt(s2[i] + c.eps) * g[i]) / std::sqrt(ag + c.eps));
  s2[i] = c.rho * s2[i] + c.rhoc * (delta * delta);
  p[i] = pi + c.lr * delta;
}

// Fills t with Update<rule>::run for every rule: backends differ only in their Update loop.
template <template <auto> class Update>
static inline void fill_rules(OptimOps& t) {
  t.sgd_update = Update<sgd>::run;
  t.adam_update = Update<adam>::run;
  t.rmsprop_update = Update<rmsprop>::run;
  t.adagrad_update = Update<adagrad>::run;
  t.adadelta_update = Update<adadelta>::run;
}
}  // namespace optim_rules
}  // namespace fastnn
