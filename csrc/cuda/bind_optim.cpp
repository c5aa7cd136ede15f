// Bindings of the optimizer updates on device arrays (names, arguments and checks of csrc/bind/optim.cpp):
// param/grad/slots are one array each or lists of them; every tensor of a list is updated by one fused
// launch (kernels.h optim_update), in place.
#include <string>
#include <vector>

#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace fastnn {
namespace cuda {
namespace {
using Slots = std::vector<std::pair<const char*, py::object>>;

std::vector<py::object> items(const py::object& o, bool many, const std::string& name, const char* what) {
  if (!many) return {o};
  FASTNN_CHECK(py::isinstance<py::list>(o) || py::isinstance<py::tuple>(o),
               name + ": param is a list, so " + what + " must be a list too");
  std::vector<py::object> v;
  for (const py::handle& h : o) v.push_back(py::reinterpret_borrow<py::object>(h));
  return v;
}

void update(const std::string& name, int rule, const OptimHyper& h, const py::object& param, const py::object& grad,
            const Slots& slots, size_t nrequired = 0) {
  for (size_t k = 0; k < nrequired; ++k)
    FASTNN_CHECK(!slots[k].second.is_none(), name + ": slot " + slots[k].first + " is required");
  const bool many = py::isinstance<py::list>(param) || py::isinstance<py::tuple>(param);
  const std::vector<py::object> ps = items(param, many, name, "param"), gs = items(grad, many, name, "grad");
  FASTNN_CHECK(gs.size() == ps.size(), name + ": " + std::to_string(ps.size()) + " params but " +
                                           std::to_string(gs.size()) + " grads");
  std::vector<std::vector<py::object>> ss;
  for (const auto& s : slots) {
    ss.push_back(s.second.is_none() ? std::vector<py::object>(ps.size(), py::none()) : items(s.second, many, name, s.first));
    FASTNN_CHECK(ss.back().size() == ps.size(), name + ": " + std::to_string(ps.size()) + " params but " +
                                                    std::to_string(ss.back().size()) + " " + s.first);
  }
  std::vector<OptimJob> jobs;
  int device = -1;
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::string at = many ? "[" + std::to_string(i) + "]" : "";
    Array& p = as_dev(ps[i], name + ": param" + at);
    Array& g = as_dev(gs[i], name + ": grad" + at);
    FASTNN_CHECK(g.shape == p.shape, name + ": grad" + at + " has shape " + shape_str(g.shape) + ", param" + at + " " +
                                         shape_str(p.shape));
    check_same_device(g, p, name + ": grad" + at);
    if (device < 0) device = p.device();
    FASTNN_CHECK(p.device() == device, name + ": param" + at + " is on another device than param[0]");
    OptimJob j{p.f32(), g.f32(), {nullptr, nullptr, nullptr}, p.size()};
    for (size_t k = 0; k < slots.size(); ++k) {
      if (ss[k][i].is_none()) continue;
      Array& s = as_dev(ss[k][i], name + ": " + slots[k].first + at);
      FASTNN_CHECK(s.size() == p.size(), name + ": " + slots[k].first + at + " has shape " + shape_str(s.shape) +
                                             ", param" + at + " " + shape_str(p.shape));
      check_same_device(s, p, name + ": " + slots[k].first + at);
      j.s[k] = s.f32();
    }
    if (j.n) jobs.push_back(j);
  }
  if (jobs.empty()) return;
  check(cudaSetDevice(device), "cudaSetDevice");
  optim_update(rule, h, jobs.data(), int(jobs.size()));
  check(cudaGetLastError(), name.c_str());
}
}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_update", [](const py::object& param, const py::object& grad, const py::object& momentums,
                         double learning_rate, double momentum, bool nesterov, double weight_decay) {
    OptimHyper h;
    h.learning_rate = learning_rate;
    h.momentum = momentum;
    h.nesterov = nesterov;
    h.weight_decay = weight_decay;
    check_momentum_slot(momentum, !momentums.is_none(), "sgd_update");
    update("sgd_update", kSgd, h, param, grad, {{"momentums", momentum == 0.0 ? py::none() : momentums}});
  }, py::arg("param"), py::arg("grad"), py::arg("momentums") = py::none(), py::kw_only(),
     py::arg("learning_rate") = 0.01, py::arg("momentum") = 0.0, py::arg("nesterov") = false,
     py::arg("weight_decay") = 0.0);
  m.def("adam_update", [](const py::object& param, const py::object& grad, const py::object& m_, const py::object& v_,
                          double learning_rate, double beta_1, double beta_2, double epsilon, int64_t step,
                          double weight_decay) {
    check_adam_step(step);
    OptimHyper h;
    h.learning_rate = learning_rate;
    h.beta_1 = beta_1;
    h.beta_2 = beta_2;
    h.epsilon = epsilon;
    h.step = step;
    h.weight_decay = weight_decay;
    update("adam_update", kAdam, h, param, grad, {{"m", m_}, {"v", v_}}, 2);
  }, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::kw_only(), py::arg("learning_rate") = 0.001,
     py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999, py::arg("epsilon") = 1e-7, py::arg("step"),
     py::arg("weight_decay") = 0.0);
  m.def("rmsprop_update", [](const py::object& param, const py::object& grad, const py::object& velocities,
                             const py::object& momentums, const py::object& average_grads, double learning_rate,
                             double rho, double momentum, double epsilon, bool centered, double weight_decay) {
    OptimHyper h;
    h.learning_rate = learning_rate;
    h.rho = rho;
    h.momentum = momentum;
    h.epsilon = epsilon;
    h.centered = centered;
    h.weight_decay = weight_decay;
    check_momentum_slot(momentum, !momentums.is_none(), "rmsprop_update");
    check_centered_slot(centered, !average_grads.is_none());
    update("rmsprop_update", kRmsprop, h, param, grad,
           {{"velocities", velocities},
            {"momentums", momentum > 0.0 ? momentums : py::none()},
            {"average_grads", centered ? average_grads : py::none()}},
           1);
  }, py::arg("param"), py::arg("grad"), py::arg("velocities"), py::arg("momentums") = py::none(),
     py::arg("average_grads") = py::none(), py::kw_only(), py::arg("learning_rate") = 0.001, py::arg("rho") = 0.9,
     py::arg("momentum") = 0.0, py::arg("epsilon") = 1e-7, py::arg("centered") = false, py::arg("weight_decay") = 0.0);
  m.def("adagrad_update", [](const py::object& param, const py::object& grad, const py::object& accumulators,
                             double learning_rate, double epsilon, double weight_decay) {
    OptimHyper h;
    h.learning_rate = learning_rate;
    h.epsilon = epsilon;
    h.weight_decay = weight_decay;
    update("adagrad_update", kAdagrad, h, param, grad, {{"accumulators", accumulators}}, 1);
  }, py::arg("param"), py::arg("grad"), py::arg("accumulators"), py::kw_only(), py::arg("learning_rate") = 0.001,
     py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0);
  m.def("adadelta_update", [](const py::object& param, const py::object& grad, const py::object& accumulated_grads,
                              const py::object& accumulated_deltas, double learning_rate, double rho, double epsilon,
                              double weight_decay) {
    OptimHyper h;
    h.learning_rate = learning_rate;
    h.rho = rho;
    h.epsilon = epsilon;
    h.weight_decay = weight_decay;
    update("adadelta_update", kAdadelta, h, param, grad,
           {{"accumulated_grads", accumulated_grads}, {"accumulated_deltas", accumulated_deltas}}, 2);
  }, py::arg("param"), py::arg("grad"), py::arg("accumulated_grads"), py::arg("accumulated_deltas"), py::kw_only(),
     py::arg("learning_rate") = 0.001, py::arg("rho") = 0.95, py::arg("epsilon") = 1e-7, py::arg("weight_decay") = 0.0);
}
}  // namespace cuda
}  // namespace fastnn
