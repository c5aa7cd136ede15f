// Bindings of the optimizer updates on device arrays: names, arguments and checks in bind/optim_defs.h
// (shared with the CPU bindings); here the device-array adapter. Every tensor of a list is updated by one
// fused launch (kernels.h optim_update), in place.
#include <string>
#include <vector>

#include "bind/optim_defs.h"
#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace fastnn {
namespace cuda {
namespace {
void update(const std::string& name, int rule, const OptimHyper& h, const py::object& param, const py::object& grad,
            const optim_bind::Slots& slots, size_t nrequired) {
  const optim_bind::OptimArgs a = optim_bind::unpack(name, param, grad, slots, nrequired);
  std::vector<OptimJob> jobs;
  int device = -1;
  for (size_t i = 0; i < a.ps.size(); ++i) {
    const std::string at = a.at(i);
    Array& p = as_dev(a.ps[i], name + ": param" + at);
    Array& g = as_dev(a.gs[i], name + ": grad" + at);
    FASTNN_CHECK(g.shape == p.shape, name + ": grad" + at + " has shape " + shape_str(g.shape) + ", param" + at + " " +
                                         shape_str(p.shape));
    check_same_device(g, p, name + ": grad" + at);
    if (device < 0) device = p.device();
    FASTNN_CHECK(p.device() == device, name + ": param" + at + " is on another device than param[0]");
    OptimJob j{p.f32(), g.f32(), {nullptr, nullptr, nullptr}, p.size()};
    for (size_t k = 0; k < slots.size(); ++k) {
      if (a.ss[k][i].is_none()) continue;
      Array& s = as_dev(a.ss[k][i], name + ": " + slots[k].first + at);
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

void bind_optim(py::module_& m) { optim_bind::def_optim_updates(m, update); }
}  // namespace cuda
}  // namespace fastnn
