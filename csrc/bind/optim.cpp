// Bindings of the optimizer updates on numpy arrays: names, arguments and checks in bind/optim_defs.h
// (shared with the CUDA module); here the numpy adapter. param and slots must be writable C-contiguous
// float32 arrays (updated in place); grad any array of param's shape. One call updates every tensor of a
// list with the GIL released once.
#include <vector>

#include "bind/common.h"
#include "bind/optim_defs.h"

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

// Validates the arrays of every tensor, then runs rule `rule` of table o on each.
void update(const OptimOps* o, const std::string& name, int rule, const OptimHyper& h, const py::object& param,
            const py::object& grad, const optim_bind::Slots& slots, size_t nrequired) {
  const optim_bind::OptimArgs a = optim_bind::unpack(name, param, grad, slots, nrequired);
  std::vector<farray> keep;  // the converted gradients, alive until the update ran
  std::vector<Job> jobs;
  for (size_t i = 0; i < a.ps.size(); ++i) {
    const std::string at = a.at(i);
    py::array p = inplace(a.ps[i], name + ": param" + at);
    keep.push_back(as_f32_contig(a.gs[i], (name + ": grad" + at).c_str()));
    const farray& g = keep.back();
    FASTNN_CHECK(g.ndim() == p.ndim() && std::equal(p.shape(), p.shape() + p.ndim(), g.shape()),
                 name + ": grad" + at + " has shape " + shape_str(g) + ", param" + at + " " + shape_str(p));
    Job j{static_cast<float*>(p.mutable_data()), g.data(), {nullptr, nullptr, nullptr}, int64_t(p.size())};
    for (size_t k = 0; k < slots.size(); ++k) {
      if (a.ss[k][i].is_none()) continue;
      py::array s = inplace(a.ss[k][i], name + ": " + slots[k].first + at);
      FASTNN_CHECK(s.size() == p.size(), name + ": " + slots[k].first + at + " has shape " + shape_str(s) +
                                             ", param" + at + " " + shape_str(p));
      j.s[k] = static_cast<float*>(s.mutable_data());
    }
    jobs.push_back(j);
  }
  const OptimUpdateFn fn = rule_fn(*o, rule);
  py::gil_scoped_release nogil;
  for (const Job& j : jobs) fn(h, j.p, j.g, j.s[0], j.s[1], j.s[2], j.n);
}
}  // namespace

void bind_optim(py::module_& m, const KernelTable* t) {
  const OptimOps* o = &t->optim;
  optim_bind::def_optim_updates(m, [o](const std::string& name, int rule, const OptimHyper& h, const py::object& param,
                                       const py::object& grad, const optim_bind::Slots& slots, size_t nrequired) {
    update(o, name, rule, h, param, grad, slots, nrequired);
  });
}
}  // namespace fastnn
