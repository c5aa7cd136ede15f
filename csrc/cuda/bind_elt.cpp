// Bindings of the elementwise group on device arrays: <act>_forward/_backward, (log_)softmax_*, the losses
// and dropout, with the names, arguments and checks of the CPU bindings (csrc/bind/unary.cpp, softmax.cpp,
// loss.cpp, dropout.cpp; the shape checks are the shared resolvers of csrc/resolve/).
#include <string>

#include "cuda/kernels.h"
#include "cuda/runtime.h"
#include "ops/eltwise.h"

namespace fastnn {
namespace cuda {
namespace {
void launched(const std::string& name) { check(cudaGetLastError(), name.c_str()); }

// A device int the loss kernels raise when a label is out of range; read back (a sync) after the launch.
struct LabelFlag {
  Array flag;
  explicit LabelFlag(const Array& like) : flag(Array::empty({1}, DType::i32, like.device())) {
    check(cudaMemsetAsync(flag.i32(), 0, 4, launch_stream()), "cudaMemset");
  }
  // NOTE: skipped while a CUDA graph is captured (nothing may wait for the GPU then): bad labels give NaN.
  void raise_if_set(const std::string& name, int64_t K) {
    if (capture_pool()) return;
    int bad = 0;
    check(cudaMemcpy(&bad, flag.i32(), 4, cudaMemcpyDeviceToHost), "copy to host");
    if (bad) throw std::invalid_argument(name + ": a label is outside [0, " + std::to_string(K) + ")");
  }
};

struct Targets {  // class ids (int32, (B,)) or a (B, K) float32 distribution, on the device
  const int32_t* labels = nullptr;
  const float* target = nullptr;
};
Targets targets(const py::object& t_in, const Array& x, const std::string& name) {
  const int64_t B = x.shape[0], K = x.shape[1];
  if (!py::isinstance<Array>(t_in)) as_dev(t_in, name + ": target");  // raises the mixing TypeError
  const Array& t = t_in.cast<const Array&>();
  check_same_device(t, x, name + ": target");
  Targets r;
  if (sparse_target(t.shape, B, K, name)) r.labels = as_dev(t_in, name + ": target (class ids)", DType::i32).i32();
  else r.target = as_dev(t_in, name + ": target").f32();
  return r;
}

Array rows2d(const py::object& x_in, const std::string& name, const char* what) {
  Array& x = as_dev(x_in, name + ": " + what);
  check_rows(x.shape, name, what);
  use_device(x);
  return x;
}

// dloss: a Python number, a one-element device array (broadcast) or (B,).
Array row_grads(const py::object& g_in, const Array& like, int64_t B, const std::string& name) {
  if (py::isinstance<py::float_>(g_in) || py::isinstance<py::int_>(g_in)) {
    Array full = Array::empty({B}, DType::f32, like.device());
    fill(full.f32(), g_in.cast<float>(), B);
    return full;
  }
  Array& g = as_dev(g_in, name + ": dloss");
  check_same_device(g, like, name + ": dloss");
  if (resolve_row_grads(g.shape, B, name)) {
    Array full = Array::empty({B}, DType::f32, like.device());
    broadcast(full.f32(), g.f32(), B);
    return full;
  }
  return g;
}

Array same_shape_input(const py::object& in, const Array& like, const std::string& what) {
  Array& a = as_dev(in, what);
  check_same_device(a, like, what);
  return a;
}

void bind_unary(py::module_& m) {
  for (int op = 0; op < kUnaryCount; ++op) {
    const UnaryInfo& u = kUnaryOps[op];
    const std::string fwd = std::string(u.name) + "_forward", bwd = std::string(u.name) + "_backward";
    const float alpha = float(u.alpha.value_or(0.0));
    m.def(fwd.c_str(), [op, fwd](const py::object& x_in, float alpha, const py::object& out) {
      Array& x = as_dev(x_in, fwd + ": x");
      use_device(x);
      Array y = out_or_new(out, x.shape, fwd, x);
      check_disjoint(y, x, fwd, "x", true);
      unary_forward(op, y.f32(), x.f32(), x.size(), alpha);
      launched(fwd);
      return y;
    }, py::arg("x"), py::kw_only(), py::arg("alpha") = alpha, py::arg("out") = py::none());
    m.def(bwd.c_str(), [op, bwd](const py::object& dy_in, const py::object& s_in, float alpha, const py::object& out) {
      Array& dy = as_dev(dy_in, bwd + ": dy");
      use_device(dy);
      Array s = same_shape_input(s_in, dy, bwd + ": saved");
      check_same_shape(dy.shape, s.shape, bwd + ": dy and the saved array");
      Array dx = out_or_new(out, dy.shape, bwd, dy);
      check_disjoint(dx, dy, bwd, "dy", true);
      check_disjoint(dx, s, bwd, "saved", true);
      unary_backward(op, dx.f32(), dy.f32(), s.f32(), dy.size(), alpha);
      launched(bwd);
      return dx;
    }, py::arg("dy"), py::arg("saved"), py::kw_only(), py::arg("alpha") = alpha, py::arg("out") = py::none());
  }
}

void bind_softmax(py::module_& m) {
  for (int log = 0; log < 2; ++log) {
    const std::string base = log ? "log_softmax" : "softmax", fwd = base + "_forward", bwd = base + "_backward";
    m.def(fwd.c_str(), [log, fwd](const py::object& x_in, int axis, const py::object& out) {
      Array& x = as_dev(x_in, fwd + ": x");
      use_device(x);
      const AxisSplit sp = resolve_softmax_axis(x.shape, axis, fwd);
      Array y = out_or_new(out, x.shape, fwd, x);
      check_disjoint(y, x, fwd, "x", true);
      if (x.size()) softmax_forward(y.f32(), x.f32(), sp.outer, sp.K, sp.inner, log);
      launched(fwd);
      return y;
    }, py::arg("x"), py::arg("axis") = -1, py::kw_only(), py::arg("out") = py::none());
    m.def(bwd.c_str(), [log, bwd](const py::object& dy_in, const py::object& y_in, int axis, const py::object& out) {
      Array& dy = as_dev(dy_in, bwd + ": dy");
      use_device(dy);
      Array y = same_shape_input(y_in, dy, bwd + ": y");
      check_same_shape(dy.shape, y.shape, bwd + ": dy and y");
      const AxisSplit sp = resolve_softmax_axis(y.shape, axis, bwd);
      Array dx = out_or_new(out, y.shape, bwd, y);
      check_disjoint(dx, dy, bwd, "dy");
      check_disjoint(dx, y, bwd, "y");
      if (y.size()) softmax_backward(dx.f32(), dy.f32(), y.f32(), sp.outer, sp.K, sp.inner, log);
      launched(bwd);
      return dx;
    }, py::arg("dy"), py::arg("y"), py::arg("axis") = -1, py::kw_only(), py::arg("out") = py::none());
  }
}

void bind_loss(py::module_& m) {
  m.def("softmax_xent_forward", [](const py::object& x_in, const py::object& t_in, const py::object& out) {
    const std::string name = "softmax_xent_forward";
    Array x = rows2d(x_in, name, "logits");
    const int64_t B = x.shape[0], K = x.shape[1];
    const Targets tg = targets(t_in, x, name);
    Array loss = out_or_new(out, {B}, name, x), lse = Array::empty({B}, DType::f32, x.device());
    check_disjoint(loss, x, name, "logits");
    LabelFlag bad(x);
    softmax_xent_forward(loss.f32(), lse.f32(), x.f32(), tg.labels, tg.target, B, K, bad.flag.i32());
    launched(name);
    if (tg.labels) bad.raise_if_set(name, K);
    return py::make_tuple(loss, lse);
  }, py::arg("logits"), py::arg("target"), py::kw_only(), py::arg("out") = py::none());
  m.def("softmax_xent_backward", [](const py::object& g_in, const py::object& x_in, const py::object& lse_in,
                                    const py::object& t_in, const py::object& out) {
    const std::string name = "softmax_xent_backward";
    Array x = rows2d(x_in, name, "logits");
    const int64_t B = x.shape[0], K = x.shape[1];
    const Targets tg = targets(t_in, x, name);
    Array g = row_grads(g_in, x, B, name);
    Array lse = same_shape_input(lse_in, x, name + ": lse");
    check_lse(lse.shape, B, name);
    Array dx = out_or_new(out, {B, K}, name, x);
    check_disjoint(dx, x, name, "logits");
    check_disjoint(dx, lse, name, "lse");
    LabelFlag bad(x);
    softmax_xent_backward(dx.f32(), g.f32(), x.f32(), lse.f32(), tg.labels, tg.target, B, K, bad.flag.i32());
    launched(name);
    if (tg.labels) bad.raise_if_set(name, K);
    return dx;
  }, py::arg("dloss"), py::arg("logits"), py::arg("lse"), py::arg("target"), py::kw_only(), py::arg("out") = py::none());
  m.def("prob_xent_forward", [](const py::object& p_in, const py::object& t_in, float eps, const py::object& out) {
    const std::string name = "prob_xent_forward";
    Array p = rows2d(p_in, name, "probabilities");
    const int64_t B = p.shape[0], K = p.shape[1];
    const Targets tg = targets(t_in, p, name);
    Array loss = out_or_new(out, {B}, name, p);
    check_disjoint(loss, p, name, "probabilities");
    LabelFlag bad(p);
    prob_xent_forward(loss.f32(), p.f32(), tg.labels, tg.target, B, K, eps, bad.flag.i32());
    launched(name);
    if (tg.labels) bad.raise_if_set(name, K);
    return loss;
  }, py::arg("probs"), py::arg("target"), py::kw_only(), py::arg("epsilon") = 1e-7f, py::arg("out") = py::none());
  m.def("prob_xent_backward", [](const py::object& g_in, const py::object& p_in, const py::object& t_in, float eps,
                                 const py::object& out) {
    const std::string name = "prob_xent_backward";
    Array p = rows2d(p_in, name, "probabilities");
    const int64_t B = p.shape[0], K = p.shape[1];
    const Targets tg = targets(t_in, p, name);
    Array g = row_grads(g_in, p, B, name);
    Array dp = out_or_new(out, {B, K}, name, p);
    check_disjoint(dp, p, name, "probabilities");
    LabelFlag bad(p);
    prob_xent_backward(dp.f32(), g.f32(), p.f32(), tg.labels, tg.target, B, K, eps, bad.flag.i32());
    launched(name);
    if (tg.labels) bad.raise_if_set(name, K);
    return dp;
  }, py::arg("dloss"), py::arg("probs"), py::arg("target"), py::kw_only(), py::arg("epsilon") = 1e-7f,
     py::arg("out") = py::none());

  const std::pair<const char*, int> points[] = {{"mean_squared_error", kMse}, {"mean_absolute_error", kMae},
                                                {"binary_crossentropy", kBce}, {"binary_crossentropy_logits", kBceLogits}};
  for (const auto& pn : points) {
    const std::string fwd = std::string(pn.first) + "_forward", bwd = std::string(pn.first) + "_backward";
    const int kind = pn.second;
    m.def(fwd.c_str(), [kind, fwd](const py::object& p_in, const py::object& y_in, float eps) {
      Array& p = as_dev(p_in, fwd + ": y_pred");
      use_device(p);
      Array y = same_shape_input(y_in, p, fwd + ": y_true");
      check_same_shape(p.shape, y.shape, fwd + ": y_pred and y_true");
      FASTNN_CHECK(p.size() > 0, fwd + ": empty input");
      Array scratch = Array::empty({2 * (kPointLossBlocks + 1)}, DType::f32, p.device());  // doubles
      double* part = reinterpret_cast<double*>(scratch.f32());
      point_loss_forward(kind, p.f32(), y.f32(), p.size(), eps, part + kPointLossBlocks, part);
      launched(fwd);
      double s = 0;
      check(cudaMemcpy(&s, part + kPointLossBlocks, sizeof(double), cudaMemcpyDeviceToHost), "copy to host");
      return s / double(p.size());
    }, py::arg("y_pred"), py::arg("y_true"), py::kw_only(), py::arg("epsilon") = 1e-7f);
    m.def(bwd.c_str(), [kind, bwd](const py::object& p_in, const py::object& y_in, float grad, float eps,
                                   const py::object& out) {
      Array& p = as_dev(p_in, bwd + ": y_pred");
      use_device(p);
      Array y = same_shape_input(y_in, p, bwd + ": y_true");
      check_same_shape(p.shape, y.shape, bwd + ": y_pred and y_true");
      Array dp = out_or_new(out, p.shape, bwd, p);
      check_disjoint(dp, p, bwd, "y_pred");
      check_disjoint(dp, y, bwd, "y_true");
      const float scale = p.size() ? grad / float(p.size()) : 0.0f;
      point_loss_backward(kind, dp.f32(), p.f32(), y.f32(), p.size(), scale, eps);
      launched(bwd);
      return dp;
    }, py::arg("y_pred"), py::arg("y_true"), py::kw_only(), py::arg("grad") = 1.0f, py::arg("epsilon") = 1e-7f,
       py::arg("out") = py::none());
  }
}

void bind_dropout(py::module_& m) {
  m.def("dropout", [](const py::object& x_in, double rate, uint64_t seed, uint64_t offset, const py::object& out) {
    check_dropout_rate(rate);
    Array& x = as_dev(x_in, "dropout: x");
    use_device(x);
    Array y = out_or_new(out, x.shape, "dropout", x);
    check_disjoint(y, x, "dropout", "x", true);
    dropout(y.f32(), x.f32(), x.size(), rate, seed, offset);
    launched("dropout");
    return y;
  }, py::arg("x"), py::arg("rate"), py::arg("seed"), py::arg("offset") = 0, py::kw_only(), py::arg("out") = py::none());
}
}  // namespace

void bind_elt(py::module_& m) {
  bind_unary(m);
  bind_softmax(m);
  bind_loss(m);
  bind_dropout(m);
}
}  // namespace cuda
}  // namespace fastnn
