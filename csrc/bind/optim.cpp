// Bindings of the optimizer updates: <optimizer>_update(param, grad, slots..., *, hyper-parameters)
// updates param and its slot arrays IN PLACE. Each array argument may also be a list of arrays
// (one entry per parameter tensor), so one call updates a whole model with the GIL released once.
// param and slots must be writable C-contiguous float32 numpy arrays; grad any array of param's shape.
#include <vector>

#include "bind/common.h"

namespace fastnn {
namespace {
// One tensor's pointers for an update call.
struct Job {
  float* p;
  const float* g;
  float* s[3];
  int64_t n;
};

py::array inplace(const py::handle& h, const std::string& what) {
  FASTNN_CHECK(py::isinstance<py::array>(h), what + " must be a numpy array (it is updated in place)");
  py::array a = py::reinterpret_borrow<py::array>(h);
  FASTNN_CHECK(a.dtype().is(py::dtype::of<float>()), what + " must be float32, got " + std::string(py::str(a.dtype())));
  FASTNN_CHECK(a.writeable(), what + " is read-only");
  FASTNN_CHECK((a.flags() & py::array::c_style) != 0, what + " must be C-contiguous");
  return a;
}

// Validates (param, grad, slots) -- arrays, or equal-length lists of arrays -- into jobs; keeps
// the converted gradients alive in `keep`.
std::vector<Job> collect(const std::string& name, const py::object& param, const py::object& grad,
                         const std::vector<std::pair<const char*, py::object>>& slots, std::vector<farray>& keep) {
  const bool many = py::isinstance<py::list>(param) || py::isinstance<py::tuple>(param);
  auto items = [&](const py::object& o, const char* what) {
    if (!many) return std::vector<py::object>{o};
    FASTNN_CHECK(py::isinstance<py::list>(o) || py::isinstance<py::tuple>(o),
                 name + ": param is a list, so " + what + " must be a list too");
    std::vector<py::object> v;
    for (const py::handle& h : o) v.push_back(py::reinterpret_borrow<py::object>(h));
    return v;
  };
  const std::vector<py::object> ps = items(param, "param"), gs = items(grad, "grad");
  FASTNN_CHECK(gs.size() == ps.size(), name + ": " + std::to_string(ps.size()) + " params but " +
                                           std::to_string(gs.size()) + " grads");
  std::vector<std::vector<py::object>> ss;
  for (const auto& s : slots) {
    ss.push_back(s.second.is_none() ? std::vector<py::object>(ps.size(), py::none()) : items(s.second, s.first));
    FASTNN_CHECK(ss.back().size() == ps.size(), name + ": " + std::to_string(ps.size()) + " params but " +
                                                    std::to_string(ss.back().size()) + " " + s.first);
  }
  std::vector<Job> jobs;
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::string at = many ? "[" + std::to_string(i) + "]" : "";
    py::array p = inplace(ps[i], name + ": param" + at);
    keep.push_back(as_f32_contig(gs[i], (name + ": grad" + at).c_str()));
    const farray& g = keep.back();
    FASTNN_CHECK(g.ndim() == p.ndim() && std::equal(p.shape(), p.shape() + p.ndim(), g.shape()),
                 name + ": grad" + at + " has shape " + shape_str(g) + ", param" + at + " " + shape_str(p));
    Job j{static_cast<float*>(p.mutable_data()), g.data(), {nullptr, nullptr, nullptr}, int64_t(p.size())};
    for (size_t k = 0; k < slots.size(); ++k) {
      if (ss[k][i].is_none()) continue;
      py::array s = inplace(ss[k][i], name + ": " + slots[k].first + at);
      FASTNN_CHECK(s.size() == p.size(), name + ": " + slots[k].first + at + " has shape " + shape_str(s) +
                                             ", param" + at + " " + shape_str(p));
      j.s[k] = static_cast<float*>(s.mutable_data());
    }
    jobs.push_back(j);
  }
  return jobs;
}

// Checks the arguments (the first `nrequired` slots must be given), then updates every tensor.
void update(const std::string& name, OptimUpdateFn fn, const OptimHyper& h, const py::object& param,
            const py::object& grad, const std::vector<std::pair<const char*, py::object>>& slots,
            size_t nrequired = 0) {
  for (size_t k = 0; k < nrequired; ++k)
    FASTNN_CHECK(!slots[k].second.is_none(), name + ": slot " + slots[k].first + " is required");
  std::vector<farray> keep;
  const std::vector<Job> jobs = collect(name, param, grad, slots, keep);
  py::gil_scoped_release nogil;
  for (const Job& j : jobs) fn(h, j.p, j.g, j.s[0], j.s[1], j.s[2], j.n);
}
}  // namespace

namespace {
// The hyper-parameters of the moment-based updates (Adam, Adamax, Nadam), after checking the step.
OptimHyper moments_hyper(const std::string& who, double learning_rate, double beta_1, double beta_2, double epsilon,
                         int64_t step, double weight_decay) {
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
template <bool kThird>
void def_moments_update(py::module_& m, const char* name, OptimUpdateFn fn, const char* second, const char* third,
                        const char* doc) {
  const std::string who = name;
  auto run = [fn, who, second, third](const py::object& param, const py::object& grad, const py::object& m_,
                                      const py::object& s2, const py::object& s3, double learning_rate,
                                      double beta_1, double beta_2, double epsilon, int64_t step,
                                      double weight_decay) {
    const OptimHyper h = moments_hyper(who, learning_rate, beta_1, beta_2, epsilon, step, weight_decay);
    update(who, fn, h, param, grad, {{"m", m_}, {second, s2}, {third ? third : "unused", s3}}, 2);
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

// The optimizers added with the long tail (Nadam, Adamax, Lion, Ftrl): same shape as those below.
void bind_optim_tail(py::module_& m, const OptimOps* o) {
  m.def(
      "nadam_update",
      [o](const py::object& param, const py::object& grad, const py::object& momentums, const py::object& velocities,
          double learning_rate, double beta_1, double beta_2, double epsilon, int64_t step, double u_product,
          double weight_decay) {
        OptimHyper h = moments_hyper("nadam_update", learning_rate, beta_1, beta_2, epsilon, step, weight_decay);
        h.u_product = u_product;
        update("nadam_update", o->nadam_update, h, param, grad, {{"momentums", momentums}, {"velocities", velocities}},
               2);
      },
      py::arg("param"), py::arg("grad"), py::arg("momentums"), py::arg("velocities"), py::kw_only(),
      py::arg("learning_rate") = 0.001, py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999, py::arg("epsilon") = 1e-7,
      py::arg("step"), py::arg("u_product"), py::arg("weight_decay") = 0.0,
      "Keras Nadam step t=step, in place; u_product = prod of beta_1 (1 - 0.5 * 0.96^i) for i = 1..step.");
  def_moments_update<false>(m, "adamax_update", o->adamax_update, "u", nullptr, "Keras Adamax step t=step, in place.");
  m.def(
      "lion_update",
      [o](const py::object& param, const py::object& grad, const py::object& momentums, double learning_rate,
          double beta_1, double beta_2, double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.beta_1 = beta_1;
        h.beta_2 = beta_2;
        h.weight_decay = weight_decay;
        update("lion_update", o->lion_update, h, param, grad, {{"momentums", momentums}}, 1);
      },
      py::arg("param"), py::arg("grad"), py::arg("momentums"), py::kw_only(), py::arg("learning_rate") = 0.001,
      py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.99, py::arg("weight_decay") = 0.0, "Keras Lion step, in place.");
  m.def(
      "ftrl_update",
      [o](const py::object& param, const py::object& grad, const py::object& accumulators, const py::object& linears,
          double learning_rate, double learning_rate_power, double l1, double l2, double l2_shrinkage, double beta,
          double weight_decay) {
        FASTNN_CHECK(learning_rate > 0.0, "ftrl_update: learning_rate must be > 0, got " + std::to_string(learning_rate));
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.lr_power = learning_rate_power;
        h.l1 = l1;
        h.l2 = l2;
        h.l2_shrinkage = l2_shrinkage;
        h.beta = beta;
        h.weight_decay = weight_decay;
        update("ftrl_update", o->ftrl_update, h, param, grad, {{"accumulators", accumulators}, {"linears", linears}},
               2);
      },
      py::arg("param"), py::arg("grad"), py::arg("accumulators"), py::arg("linears"), py::kw_only(),
      py::arg("learning_rate") = 0.001, py::arg("learning_rate_power") = -0.5, py::arg("l1") = 0.0,
      py::arg("l2") = 0.0, py::arg("l2_shrinkage") = 0.0, py::arg("beta") = 0.0, py::arg("weight_decay") = 0.0,
      "Keras Ftrl step, in place (initialise accumulators to initial_accumulator_value, Keras 0.1).");
}
}  // namespace

void bind_optim(py::module_& m, const KernelTable* t) {
  const OptimOps* o = &t->optim;
  bind_optim_tail(m, o);
  m.def(
      "sgd_update",
      [o](const py::object& param, const py::object& grad, const py::object& momentums, double learning_rate,
          double momentum, bool nesterov, double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.momentum = momentum;
        h.nesterov = nesterov;
        h.weight_decay = weight_decay;
        check_momentum_slot(momentum, !momentums.is_none(), "sgd_update");
        update("sgd_update", o->sgd_update, h, param, grad, {{"momentums", momentum == 0.0 ? py::none() : momentums}});
      },
      py::arg("param"), py::arg("grad"), py::arg("momentums") = py::none(), py::kw_only(),
      py::arg("learning_rate") = 0.01, py::arg("momentum") = 0.0, py::arg("nesterov") = false,
      py::arg("weight_decay") = 0.0, "Keras SGD step (momentum, nesterov), in place.");
  def_moments_update<true>(m, "adam_update", o->adam_update, "v", "v_hat",
                           "Keras Adam step t=step, in place (weight_decay > 0: AdamW's decoupled decay first; "
                           "v_hat given: amsgrad, v_hat = max(v_hat, v) is used in place of v).");
  m.def(
      "rmsprop_update",
      [o](const py::object& param, const py::object& grad, const py::object& velocities, const py::object& momentums,
          const py::object& average_grads, double learning_rate, double rho, double momentum, double epsilon,
          bool centered, double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.rho = rho;
        h.momentum = momentum;
        h.epsilon = epsilon;
        h.centered = centered;
        h.weight_decay = weight_decay;
        check_momentum_slot(momentum, !momentums.is_none(), "rmsprop_update");
        check_centered_slot(centered, !average_grads.is_none());
        update("rmsprop_update", o->rmsprop_update, h, param, grad,
               {{"velocities", velocities},
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
      [o](const py::object& param, const py::object& grad, const py::object& accumulators, double learning_rate,
          double epsilon, double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.epsilon = epsilon;
        h.weight_decay = weight_decay;
        update("adagrad_update", o->adagrad_update, h, param, grad, {{"accumulators", accumulators}}, 1);
      },
      py::arg("param"), py::arg("grad"), py::arg("accumulators"), py::kw_only(), py::arg("learning_rate") = 0.001,
      py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0,
      "Keras Adagrad step, in place (initialise accumulators to initial_accumulator_value, Keras 0.1).");
  m.def(
      "adadelta_update",
      [o](const py::object& param, const py::object& grad, const py::object& accumulated_grads,
          const py::object& accumulated_deltas, double learning_rate, double rho, double epsilon,
          double weight_decay) {
        OptimHyper h;
        h.learning_rate = learning_rate;
        h.rho = rho;
        h.epsilon = epsilon;
        h.weight_decay = weight_decay;
        update("adadelta_update", o->adadelta_update, h, param, grad,
               {{"accumulated_grads", accumulated_grads}, {"accumulated_deltas", accumulated_deltas}}, 2);
      },
      py::arg("param"), py::arg("grad"), py::arg("accumulated_grads"), py::arg("accumulated_deltas"), py::kw_only(),
      py::arg("learning_rate") = 0.001, py::arg("rho") = 0.95, py::arg("epsilon") = 1e-7,
      py::arg("weight_decay") = 0.0, "Keras Adadelta step, in place.");
}
}  // namespace fastnn
