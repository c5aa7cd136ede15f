// The Python side of the optimizer updates, shared by the CPU bindings (bind/optim.cpp) and the CUDA module
// (cuda/bind_optim.cpp): <optimizer>_update(param, grad, slots..., *, hyper-parameters) with one set of names,
// defaults, docs and slot checks. Each array argument may also be a list of arrays (one entry per parameter
// tensor), so one call updates a whole model. A backend passes its own
//   update(name, rule, hyper, param, grad, slots, nrequired)
// which converts its array type (OptimArgs below unpacks the list form) and runs rule `rule` (OptimRule).
#pragma once
#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "fastnn.h"
#include "ops/optim.h"
#include "resolve/resolve.h"

namespace fastnn {
namespace optim_bind {
namespace py = pybind11;
using Slots = std::vector<std::pair<const char*, py::object>>;  // (slot name, array / list / None)

// param, grad and each slot as per-tensor entries; a slot given as None is None for every tensor.
struct OptimArgs {
  bool many;                                // the list form
  std::vector<py::object> ps, gs;           // [tensor]
  std::vector<std::vector<py::object>> ss;  // [slot][tensor]
  std::string at(size_t i) const { return many ? "[" + std::to_string(i) + "]" : ""; }  // names entry i
};

// Checks that the first `nrequired` slots are given and that every list has param's length.
inline OptimArgs unpack(const std::string& name, const py::object& param, const py::object& grad, const Slots& slots,
                        size_t nrequired) {
  for (size_t k = 0; k < nrequired; ++k)
    FASTNN_CHECK(!slots[k].second.is_none(), name + ": slot " + slots[k].first + " is required");
  OptimArgs a;
  a.many = py::isinstance<py::list>(param) || py::isinstance<py::tuple>(param);
  auto items = [&](const py::object& o, const char* what) {
    if (!a.many) return std::vector<py::object>{o};
    FASTNN_CHECK(py::isinstance<py::list>(o) || py::isinstance<py::tuple>(o),
                 name + ": param is a list, so " + what + " must be a list too");
    std::vector<py::object> v;
    for (const py::handle& h : o) v.push_back(py::reinterpret_borrow<py::object>(h));
    return v;
  };
  a.ps = items(param, "param");
  a.gs = items(grad, "grad");
  FASTNN_CHECK(a.gs.size() == a.ps.size(), name + ": " + std::to_string(a.ps.size()) + " params but " +
                                               std::to_string(a.gs.size()) + " grads");
  for (const auto& s : slots) {
    a.ss.push_back(s.second.is_none() ? std::vector<py::object>(a.ps.size(), py::none()) : items(s.second, s.first));
    FASTNN_CHECK(a.ss.back().size() == a.ps.size(), name + ": " + std::to_string(a.ps.size()) + " params but " +
                                                        std::to_string(a.ss.back().size()) + " " + s.first);
  }
  return a;
}

// The hyper-parameters of the moment-based updates (Adam, Adamax, Nadam), after checking the step.
inline OptimHyper moments_hyper(const std::string& who, double learning_rate, double beta_1, double beta_2,
                                double epsilon, int64_t step, double weight_decay) {
  check_optim_step(step, who);
  OptimHyper h;
  h.learning_rate = learning_rate;
  h.beta_1 = beta_1;
  h.beta_2 = beta_2;
  h.epsilon = epsilon;
  h.step = step;
  h.weight_decay = weight_decay;
  return h;
}

// Adam and Adamax: (param, grad, m, <second>[, <third>=None], *, learning_rate, beta_1, beta_2, epsilon, step,
// weight_decay); kThird: the optional third slot (Adam's v_hat, amsgrad).
template <bool kThird, class Update>
void def_moments_update(py::module_& m, const char* name, int rule, const Update& update, const char* second,
                        const char* third, const char* doc) {
  const std::string who = name;
  auto run = [update, rule, who, second, third](const py::object& param, const py::object& grad, const py::object& m_,
                                                const py::object& s2, const py::object& s3, double learning_rate,
                                                double beta_1, double beta_2, double epsilon, int64_t step,
                                                double weight_decay) {
    const OptimHyper h = moments_hyper(who, learning_rate, beta_1, beta_2, epsilon, step, weight_decay);
    update(who, rule, h, param, grad, Slots{{"m", m_}, {second, s2}, {third ? third : "unused", s3}}, 2);
  };
  if constexpr (kThird) {
    m.def(name, run, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg(second), py::arg(third) = py::none(),
          py::kw_only(), py::arg("learning_rate") = 0.001, py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
          py::arg("epsilon") = 1e-7, py::arg("step"), py::arg("weight_decay") = 0.0, doc);
  } else {
    m.def(
        name,
        [run](const py::object& param, const py::object& grad, const py::object& m_, const py::object& s2,
              double learning_rate, double beta_1, double beta_2, double epsilon, int64_t step, double weight_decay) {
          run(param, grad, m_, s2, py::none(), learning_rate, beta_1, beta_2, epsilon, step, weight_decay);
        },
        py::arg("param"), py::arg("grad"), py::arg("m"), py::arg(second), py::kw_only(),
        py::arg("learning_rate") = 0.001, py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
        py::arg("epsilon") = 1e-7, py::arg("step"), py::arg("weight_decay") = 0.0, doc);
  }
}

// Defines every <optimizer>_update on m, each calling update(name, rule, hyper, param, grad, slots, nrequired).
template <class Update>
void def_optim_updates(py::module_& m, const Update& update) {
  m.def(
      "sgd_update",
      [update](const py::object& param, const py::object& grad, const py::object& momentums, double learning_rate,
               double momentum, bool nesterov, double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.momentum = momentum;
        h.nesterov = nesterov;
        h.weight_decay = weight_decay;
        check_momentum_slot(momentum, !momentums.is_none(), "sgd_update");
        update("sgd_update", kRuleSgd, h, param, grad, Slots{{"momentums", momentum == 0.0 ? py::none() : momentums}},
               0);
      },
      py::arg("param"), py::arg("grad"), py::arg("momentums") = py::none(), py::kw_only(),
      py::arg("learning_rate") = 0.01, py::arg("momentum") = 0.0, py::arg("nesterov") = false,
      py::arg("weight_decay") = 0.0, "Keras SGD step (momentum, nesterov), in place.");
  def_moments_update<true>(m, "adam_update", kRuleAdam, update, "v", "v_hat",
                           "Keras Adam step t=step, in place (weight_decay > 0: AdamW's decoupled decay first; "
                           "v_hat given: amsgrad, v_hat = max(v_hat, v) is used in place of v).");
  m.def(
      "rmsprop_update",
      [update](const py::object& param, const py::object& grad, const py::object& velocities,
               const py::object& momentums, const py::object& average_grads, double learning_rate, double rho,
               double momentum, double epsilon, bool centered, double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.rho = rho;
        h.momentum = momentum;
        h.epsilon = epsilon;
        h.centered = centered;
        h.weight_decay = weight_decay;
        check_momentum_slot(momentum, !momentums.is_none(), "rmsprop_update");
        check_centered_slot(centered, !average_grads.is_none());
        update("rmsprop_update", kRuleRmsprop, h, param, grad,
               Slots{{"velocities", velocities},
                     {"momentums", momentum > 0.0 ? momentums : py::none()},
                     {"average_grads", centered ? average_grads : py::none()}},
               1);
      },
      py::arg("param"), py::arg("grad"), py::arg("velocities"), py::arg("momentums") = py::none(),
      py::arg("average_grads") = py::none(), py::kw_only(), py::arg("learning_rate") = 0.001, py::arg("rho") = 0.9,
      py::arg("momentum") = 0.0, py::arg("epsilon") = 1e-7, py::arg("centered") = false,
      py::arg("weight_decay") = 0.0, "Keras RMSprop step (epsilon inside the square root), in place.");
  m.def(
      "adagrad_update",
      [update](const py::object& param, const py::object& grad, const py::object& accumulators, double learning_rate,
               double epsilon, double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.epsilon = epsilon;
        h.weight_decay = weight_decay;
        update("adagrad_update", kRuleAdagrad, h, param, grad, Slots{{"accumulators", accumulators}}, 1);
      },
      py::arg("param"), py::arg("grad"), py::arg("accumulators"), py::kw_only(), py::arg("learning_rate") = 0.001,
      py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0,
      "Keras Adagrad step, in place (initialise accumulators to initial_accumulator_value, Keras 0.1).");
  m.def(
      "adadelta_update",
      [update](const py::object& param, const py::object& grad, const py::object& accumulated_grads,
               const py::object& accumulated_deltas, double learning_rate, double rho, double epsilon,
               double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.rho = rho;
        h.epsilon = epsilon;
        h.weight_decay = weight_decay;
        update("adadelta_update", kRuleAdadelta, h, param, grad,
               Slots{{"accumulated_grads", accumulated_grads}, {"accumulated_deltas", accumulated_deltas}}, 2);
      },
      py::arg("param"), py::arg("grad"), py::arg("accumulated_grads"), py::arg("accumulated_deltas"), py::kw_only(),
      py::arg("learning_rate") = 0.001, py::arg("rho") = 0.95, py::arg("epsilon") = 1e-7,
      py::arg("weight_decay") = 0.0, "Keras Adadelta step, in place.");
  m.def(
      "nadam_update",
      [update](const py::object& param, const py::object& grad, const py::object& momentums,
               const py::object& velocities, double learning_rate, double beta_1, double beta_2, double epsilon,
               int64_t step, double u_product, double weight_decay) {
        OptimHyper h = moments_hyper("nadam_update", learning_rate, beta_1, beta_2, epsilon, step, weight_decay);
        h.u_product = u_product;
        update("nadam_update", kRuleNadam, h, param, grad, Slots{{"momentums", momentums}, {"velocities", velocities}},
               2);
      },
      py::arg("param"), py::arg("grad"), py::arg("momentums"), py::arg("velocities"), py::kw_only(),
      py::arg("learning_rate") = 0.001, py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999, py::arg("epsilon") = 1e-7,
      py::arg("step"), py::arg("u_product"), py::arg("weight_decay") = 0.0,
      "Keras Nadam step t=step, in place; u_product = prod of beta_1 (1 - 0.5 * 0.96^i) for i = 1..step.");
  def_moments_update<false>(m, "adamax_update", kRuleAdamax, update, "u", nullptr, "Keras Adamax step t=step, in place.");
  m.def(
      "lion_update",
      [update](const py::object& param, const py::object& grad, const py::object& momentums, double learning_rate,
               double beta_1, double beta_2, double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.beta_1 = beta_1;
        h.beta_2 = beta_2;
        h.weight_decay = weight_decay;
        update("lion_update", kRuleLion, h, param, grad, Slots{{"momentums", momentums}}, 1);
      },
      py::arg("param"), py::arg("grad"), py::arg("momentums"), py::kw_only(), py::arg("learning_rate") = 0.001,
      py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.99, py::arg("weight_decay") = 0.0, "Keras Lion step, in place.");
  m.def(
      "ftrl_update",
      [update](const py::object& param, const py::object& grad, const py::object& accumulators,
               const py::object& linears, double learning_rate, double learning_rate_power, double l1, double l2,
               double l2_shrinkage, double beta, double weight_decay) {
        FASTNN_CHECK(learning_rate > 0.0, "ftrl_update: learning_rate must be > 0, got " + std::to_string(learning_rate));
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.lr_power = learning_rate_power;
        h.l1 = l1;
        h.l2 = l2;
        h.l2_shrinkage = l2_shrinkage;
        h.beta = beta;
        h.weight_decay = weight_decay;
        update("ftrl_update", kRuleFtrl, h, param, grad, Slots{{"accumulators", accumulators}, {"linears", linears}},
               2);
      },
      py::arg("param"), py::arg("grad"), py::arg("accumulators"), py::arg("linears"), py::kw_only(),
      py::arg("learning_rate") = 0.001, py::arg("learning_rate_power") = -0.5, py::arg("l1") = 0.0,
      py::arg("l2") = 0.0, py::arg("l2_shrinkage") = 0.0, py::arg("beta") = 0.0, py::arg("weight_decay") = 0.0,
      "Keras Ftrl step, in place (initialise accumulators to initial_accumulator_value, Keras 0.1).");
}
}  // namespace optim_bind
}  // namespace fastnn
