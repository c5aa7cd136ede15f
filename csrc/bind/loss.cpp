// Bindings of the losses: softmax_xent_*, prob_xent_* -> the EltOps entries of the same names;
// <loss>_forward / <loss>_backward -> point_loss_forward / point_loss_backward (kPointNames).
// Inputs are converted to float32 C-contiguous arrays; every result can be written into `out=`.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bind/common.h"

namespace fastnn {
namespace {
struct PointName {
  const char* name;
  int kind;
};
const PointName kPointNames[] = {{"mean_squared_error", kMse},
                                 {"mean_absolute_error", kMae},
                                 {"binary_crossentropy", kBce},
                                 {"binary_crossentropy_logits", kBceLogits}};

// Class ids for a batch of B rows and K classes from an integer (or integral float) array whose
// shape sparse_target has checked.
std::vector<int32_t> class_ids(const py::array& lab, int64_t B, int64_t K, const std::string& name) {
  const char kind = lab.dtype().kind();
  FASTNN_CHECK(kind == 'i' || kind == 'u' || kind == 'f',
               name + ": labels must be integers, got dtype " + std::string(py::str(lab.dtype())));
  auto d = py::array_t<double, py::array::forcecast | py::array::c_style>::ensure(lab);
  std::vector<int32_t> ids(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const double v = d.data()[b];
    const bool whole = std::isfinite(v) && v == std::floor(v);  // else the message shows Python's float
    ids[size_t(b)] = resolve_class_id(v, whole ? std::string() : std::string(py::str(py::float_(v))), b, K, name);
  }
  return ids;
}

// Targets of a (B, K) cross-entropy: class ids (shape (B,) or (B, 1)) or a (B, K) distribution.
struct Targets {
  std::vector<int32_t> ids;
  farray dist;
  bool sparse;
  const int32_t* labels() const { return sparse ? ids.data() : nullptr; }
  const float* target() const { return sparse ? nullptr : dist.data(); }
};
Targets targets(const py::object& t_in, const farray& x, const std::string& name) {
  const int64_t B = x.shape(0), K = x.shape(1);
  py::array t = py::array::ensure(t_in);
  FASTNN_CHECK(t, name + ": target must be an array-like");
  Targets r;
  r.sparse = sparse_target(shape_of(t), B, K, name);
  if (r.sparse) r.ids = class_ids(t, B, K, name);
  else r.dist = as_f32_contig(t, (name + ": target").c_str());
  return r;
}

farray logits2d(const py::object& x_in, const std::string& name, const char* what) {
  farray x = as_f32_contig(x_in, (name + ": " + what).c_str());
  check_rows(shape_of(x), name, what);
  return x;
}

// Per-row upstream gradient: a scalar (broadcast) or an array of B values.
farray row_grads(const py::object& g_in, int64_t B, const std::string& name) {
  farray g = as_f32_contig(g_in, (name + ": dloss").c_str());
  if (resolve_row_grads(shape_of(g), B, name)) {
    farray full(std::vector<int64_t>{B});
    std::fill(full.mutable_data(), full.mutable_data() + B, g.data()[0]);
    return full;
  }
  return g;
}

// The operands of a cross-entropy backward: predictions x (B, K) (`what` names them), targets, the per-row
// upstream gradient g and the output dx (B, K), checked, with dx disjoint from every input.
struct XentGrad {
  farray x;
  int64_t B, K;
  Targets tg;
  farray g, dx;
};
XentGrad xent_grad(const py::object& dloss_in, const py::object& x_in, const py::object& t_in,
                   const py::object& out, const std::string& name, const char* what) {
  farray x = logits2d(x_in, name, what);
  const int64_t B = x.shape(0), K = x.shape(1);
  Targets tg = targets(t_in, x, name);
  farray g = row_grads(dloss_in, B, name);
  farray dx = out_or_new(out, {B, K}, name.c_str());
  check_out_disjoint(dx, x, name, what);
  check_out_disjoint(dx, g, name, "dloss");
  if (!tg.sparse) check_out_disjoint(dx, tg.dist, name, "target");
  return {x, B, K, std::move(tg), g, dx};
}
}  // namespace

void bind_loss(py::module_& m, const KernelTable* t) {
  const EltOps* e = &t->elt;
  m.def(
      "softmax_xent_forward",
      [e](const py::object& x_in, const py::object& t_in, const py::object& out) {
        const std::string name = "softmax_xent_forward";
        farray x = logits2d(x_in, name, "logits");
        Targets tg = targets(t_in, x, name);
        const int64_t B = x.shape(0), K = x.shape(1);
        farray loss = out_or_new(out, {B}, name.c_str()), lse(std::vector<int64_t>{B});
        check_out_disjoint(loss, x, name, "logits");
        if (!tg.sparse) check_out_disjoint(loss, tg.dist, name, "target");
        {
          py::gil_scoped_release nogil;
          e->softmax_xent_forward(loss.mutable_data(), lse.mutable_data(), x.data(), tg.labels(), tg.target(), B, K);
        }
        return py::make_tuple(loss, lse);
      },
      py::arg("logits"), py::arg("target"), py::kw_only(), py::arg("out") = py::none(),
      "Per-row cross-entropy of softmax(logits) (B, K) against class ids (B,) or a (B, K) distribution: "
      "returns (loss (B,), logsumexp (B,)).");
  m.def(
      "softmax_xent_backward",
      [e](const py::object& dloss_in, const py::object& x_in, const py::object& lse_in, const py::object& t_in,
          const py::object& out) {
        const std::string name = "softmax_xent_backward";
        XentGrad a = xent_grad(dloss_in, x_in, t_in, out, name, "logits");
        farray lse = as_f32_contig(lse_in, (name + ": lse").c_str());
        check_lse(shape_of(lse), a.B, name);
        check_out_disjoint(a.dx, lse, name, "lse");
        {
          py::gil_scoped_release nogil;
          e->softmax_xent_backward(a.dx.mutable_data(), a.g.data(), a.x.data(), lse.data(), a.tg.labels(),
                                   a.tg.target(), a.B, a.K);
        }
        return a.dx;
      },
      py::arg("dloss"), py::arg("logits"), py::arg("lse"), py::arg("target"), py::kw_only(),
      py::arg("out") = py::none(), "dlogits = dloss_b * (softmax(logits) * sum(t) - t); dloss: scalar or (B,).");

  m.def(
      "prob_xent_forward",
      [e](const py::object& p_in, const py::object& t_in, float eps, const py::object& out) {
        const std::string name = "prob_xent_forward";
        farray p = logits2d(p_in, name, "probabilities");
        Targets tg = targets(t_in, p, name);
        const int64_t B = p.shape(0), K = p.shape(1);
        farray loss = out_or_new(out, {B}, name.c_str());
        check_out_disjoint(loss, p, name, "probabilities");
        if (!tg.sparse) check_out_disjoint(loss, tg.dist, name, "target");
        {
          py::gil_scoped_release nogil;
          e->prob_xent_forward(loss.mutable_data(), p.data(), tg.labels(), tg.target(), B, K, eps);
        }
        return loss;
      },
      py::arg("probs"), py::arg("target"), py::kw_only(), py::arg("epsilon") = 1e-7f, py::arg("out") = py::none(),
      "Keras's cross-entropy of probabilities (B, K): renormalise rows, clip to [eps, 1-eps], -sum t log p.");
  m.def(
      "prob_xent_backward",
      [e](const py::object& dloss_in, const py::object& p_in, const py::object& t_in, float eps,
          const py::object& out) {
        XentGrad a = xent_grad(dloss_in, p_in, t_in, out, "prob_xent_backward", "probabilities");
        {
          py::gil_scoped_release nogil;
          e->prob_xent_backward(a.dx.mutable_data(), a.g.data(), a.x.data(), a.tg.labels(), a.tg.target(), a.B, a.K,
                                eps);
        }
        return a.dx;
      },
      py::arg("dloss"), py::arg("probs"), py::arg("target"), py::kw_only(), py::arg("epsilon") = 1e-7f,
      py::arg("out") = py::none(), "Gradient of prob_xent_forward with respect to the probabilities.");

  for (const PointName& pn : kPointNames) {
    const std::string fwd = std::string(pn.name) + "_forward", bwd = std::string(pn.name) + "_backward";
    const int kind = pn.kind;
    m.def(
        fwd.c_str(),
        [e, kind, fwd](const py::object& p_in, const py::object& y_in, float eps) {
          farray p = as_f32_contig(p_in, (fwd + ": y_pred").c_str());
          farray y = as_f32_contig(y_in, (fwd + ": y_true").c_str());
          check_same_shape(shape_of(p), shape_of(y), fwd + ": y_pred and y_true");
          FASTNN_CHECK(p.size() > 0, fwd + ": empty input");
          double s;
          {
            py::gil_scoped_release nogil;
            s = e->point_loss_forward(kind, p.data(), y.data(), p.size(), eps);
          }
          return s / double(p.size());
        },
        py::arg("y_pred"), py::arg("y_true"), py::kw_only(), py::arg("epsilon") = 1e-7f,
        (std::string("Mean over all elements of ") + pn.name + " (a Python float).").c_str());
    m.def(
        bwd.c_str(),
        [e, kind, bwd](const py::object& p_in, const py::object& y_in, float grad, float eps, const py::object& out) {
          farray p = as_f32_contig(p_in, (bwd + ": y_pred").c_str());
          farray y = as_f32_contig(y_in, (bwd + ": y_true").c_str());
          check_same_shape(shape_of(p), shape_of(y), bwd + ": y_pred and y_true");
          farray dp = out_or_new(out, shape_of(p), bwd.c_str());
          check_out_disjoint(dp, p, bwd, "y_pred");
          check_out_disjoint(dp, y, bwd, "y_true");
          {
            py::gil_scoped_release nogil;
            const float scale = p.size() ? grad / float(p.size()) : 0.0f;
            e->point_loss_backward(kind, dp.mutable_data(), p.data(), y.data(), p.size(), scale, eps);
          }
          return dp;
        },
        py::arg("y_pred"), py::arg("y_true"), py::kw_only(), py::arg("grad") = 1.0f, py::arg("epsilon") = 1e-7f,
        py::arg("out") = py::none(), "Gradient of the mean loss (times grad) with respect to y_pred.");
  }
}
}  // namespace fastnn
