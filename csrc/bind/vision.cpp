// Bindings of the vision group: depthwise_conv2d_{forward,backward} (geometry resolved by
// resolve_conv2d on the equivalent kernel shape (KH,KW,C,C*DM)), batchnorm_{forward,backward} and
// layernorm_{forward,backward}.
#include <pybind11/stl.h>

#include "bind/common.h"

namespace fastnn {
namespace {
// A (height, width) pair of ints >= 1, bounded so window arithmetic stays far from int64 limits.
Pair checked_pair(const std::array<int64_t, 2>& v, const std::string& what) {
  constexpr int64_t kMax = (int64_t(1) << 31) - 1;
  FASTNN_CHECK(v[0] >= 1 && v[1] >= 1 && v[0] <= kMax && v[1] <= kMax,
               what + " must be in [1, 2^31-1], got (" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ")");
  return {v[0], v[1]};
}

// x (B,H,W,C), kernel (KH,KW,C,DM) -> the conv geometry with OC = C*DM.
Conv2dParams depthwise_params(const farray& x, const farray& k, const std::array<int64_t, 2>& strides,
                              const std::string& padding, const std::array<int64_t, 2>& dilation,
                              const std::string& op) {
  const Shape ks = shape_of(k);
  check_nhwc(shape_of(x), op, "x");
  FASTNN_CHECK(ks.size() == 4, op + ": kernel must be 4-D (kh, kw, channels, depth_multiplier), got shape " +
                                   shape_str(ks));
  FASTNN_CHECK(ks[2] == x.shape(3), op + ": kernel " + shape_str(ks) + " expects " + std::to_string(ks[2]) +
                                        " channels but x " + shape_str(x) + " has " + std::to_string(x.shape(3)));
  int64_t oc;
  FASTNN_CHECK(ks[3] > 0 && !__builtin_mul_overflow(ks[2], ks[3], &oc), op + ": kernel " + shape_str(ks) + " is empty or too large");
  return resolve_conv2d(shape_of(x), {ks[0], ks[1], ks[2], oc}, checked_pair(strides, op + ": strides"), padding,
                        checked_pair(dilation, op + ": dilation_rate"), op);
}

int bn_act(const py::object& a, const std::string& op) {
  if (a.is_none()) return kBnNone;
  const std::string s = py::str(a);
  FASTNN_CHECK(s == "relu" || s == "relu6" || s == "linear", op + ": activation must be None, 'linear', 'relu' or "
                                                                  "'relu6', got '" + s + "'");
  return s == "relu" ? kBnRelu : s == "relu6" ? kBnRelu6 : kBnNone;
}

// x viewed as (N, C): C its last axis, N the product of the others.
BatchNormParams bn_params(const farray& x, double epsilon, double momentum, bool training, int act,
                          const std::string& op) {
  FASTNN_CHECK(x.ndim() >= 1 && x.shape(x.ndim() - 1) > 0, op + ": x must have a non-empty last axis, got shape " + shape_str(x));
  FASTNN_CHECK(epsilon > 0.0, op + ": epsilon must be > 0, got " + std::to_string(epsilon));
  BatchNormParams p{};
  p.C = x.shape(x.ndim() - 1);
  p.N = x.size() / p.C;
  FASTNN_CHECK(!training || p.N > 0, op + ": training needs a non-empty batch, got shape " + shape_str(x));
  p.epsilon = float(epsilon);
  p.momentum = float(momentum);
  p.training = training;
  p.act = act;
  return p;
}

// An optional (C,) array: nullptr when None.
const float* vec_or_null(const py::object& h, farray& keep, int64_t C, const std::string& what) {
  if (h.is_none()) return nullptr;
  keep = as_f32_contig(h, what.c_str());
  check_shape(shape_of(keep), {C}, what);
  return keep.data();
}
// Three gradient outputs of a backward binding, each allocated (uninitialised: the kernels write them) when
// asked for, else None with a null pointer.
struct Grads {
  py::object obj[3] = {py::none(), py::none(), py::none()};
  float* ptr[3] = {nullptr, nullptr, nullptr};
  Grads(const std::array<Shape, 3>& shapes, const std::array<bool, 3>& need) {
    for (int i = 0; i < 3; ++i) {
      if (!need[i]) continue;
      farray a(shapes[i]);
      ptr[i] = a.mutable_data();
      obj[i] = a;
    }
  }
  py::tuple tuple() const { return py::make_tuple(obj[0], obj[1], obj[2]); }
};
}  // namespace

void bind_vision(py::module_& m, const KernelTable* t) {
  using P = std::array<int64_t, 2>;
  m.def(
      "depthwise_conv2d_forward",
      [t](const py::object& x_in, const py::object& k_in, const py::object& bias_in, const P& strides,
          const std::string& padding, const P& dilation, const py::object& out) {
        const std::string op = "depthwise_conv2d";
        farray x = as_f32_contig(x_in, "depthwise_conv2d: x"), k = as_f32_contig(k_in, "depthwise_conv2d: kernel");
        const Conv2dParams p = depthwise_params(x, k, strides, padding, dilation, op);
        farray bias;
        const float* bp = vec_or_null(bias_in, bias, p.OC, "depthwise_conv2d: bias");
        farray o = out_or_new(out, {p.B, p.OH, p.OW, p.OC}, "depthwise_conv2d");
        check_out_disjoint(o, x, op, "x");
        check_out_disjoint(o, k, op, "kernel");
        if (bp) check_out_disjoint(o, bias, op, "bias");
        py::gil_scoped_release nogil;
        t->vision.depthwise_conv2d_forward(o.mutable_data(), x.data(), k.data(), bp, p);
        return o;
      },
      py::arg("x"), py::arg("kernel"), py::arg("bias") = py::none(), py::kw_only(), py::arg("strides") = P{1, 1},
      py::arg("padding") = "valid", py::arg("dilation_rate") = P{1, 1}, py::arg("out") = py::none(),
      "Depthwise convolution: x (B,H,W,C), kernel (KH,KW,C,DM) (+ bias (C*DM,)) -> (B,OH,OW,C*DM), Keras padding; "
      "strides and dilation_rate are (height, width) pairs.");

  m.def(
      "depthwise_conv2d_backward",
      [t](const py::object& dout_in, const py::object& x_in, const py::object& k_in, const P& strides,
          const std::string& padding, const P& dilation, bool need_dx, bool need_dk, bool need_db) {
        const std::string op = "depthwise_conv2d_backward";
        farray x = as_f32_contig(x_in, "depthwise_conv2d_backward: x");
        farray k = as_f32_contig(k_in, "depthwise_conv2d_backward: kernel");
        farray dout = as_f32_contig(dout_in, "depthwise_conv2d_backward: dout");
        const Conv2dParams p = depthwise_params(x, k, strides, padding, dilation, op);
        check_shape(shape_of(dout), {p.B, p.OH, p.OW, p.OC}, op + ": dout");
        Grads d({shape_of(x), shape_of(k), Shape{p.OC}}, {need_dx, need_dk, need_db});
        {
          py::gil_scoped_release nogil;
          t->vision.depthwise_conv2d_backward(d.ptr[0], d.ptr[1], d.ptr[2], dout.data(), x.data(), k.data(), p);
        }
        return d.tuple();
      },
      py::arg("dout"), py::arg("x"), py::arg("kernel"), py::kw_only(), py::arg("strides") = P{1, 1},
      py::arg("padding") = "valid", py::arg("dilation_rate") = P{1, 1}, py::arg("dx") = true,
      py::arg("dkernel") = true, py::arg("dbias") = true,
      "Gradients (dx, dkernel, dbias) of depthwise_conv2d given dout (B,OH,OW,C*DM); None where not asked.");

  m.def(
      "batchnorm_forward",
      [t](const py::object& x_in, const py::object& gamma_in, const py::object& beta_in, const py::object& mm_in,
          const py::object& mv_in, double epsilon, double momentum, bool training, const py::object& activation) {
        const std::string op = "batchnorm";
        farray x = as_f32_contig(x_in, "batchnorm: x");
        const BatchNormParams p = bn_params(x, epsilon, momentum, training, bn_act(activation, op), op);
        farray g, b;
        const float* gp = vec_or_null(gamma_in, g, p.C, "batchnorm: gamma");
        const float* bp = vec_or_null(beta_in, b, p.C, "batchnorm: beta");
        // moving statistics: read (inference) or updated in place (training); writable (C,) float32
        farray mm = out_or_new(mm_in, {p.C}, "batchnorm: moving_mean");
        farray mv = out_or_new(mv_in, {p.C}, "batchnorm: moving_variance");
        FASTNN_CHECK(!mm_in.is_none() && !mv_in.is_none(), op + ": moving_mean and moving_variance are required");
        farray y(shape_of(x)), mean(std::vector<int64_t>{p.C}), inv(std::vector<int64_t>{p.C});
        for (const farray* a : {&mm, &mv}) {
          check_out_disjoint(*a, x, op, "x");
          if (gp) check_out_disjoint(*a, g, op, "gamma");
          if (bp) check_out_disjoint(*a, b, op, "beta");
        }
        check_out_disjoint(mm, mv, op, "moving_variance");
        {
          py::gil_scoped_release nogil;
          t->vision.batchnorm_forward(y.mutable_data(), mean.mutable_data(), inv.mutable_data(), mm.mutable_data(),
                                      mv.mutable_data(), x.data(), gp, bp, p);
        }
        return py::make_tuple(y, mean, inv);
      },
      py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("moving_mean"), py::arg("moving_variance"),
      py::kw_only(), py::arg("epsilon") = 1e-3, py::arg("momentum") = 0.99, py::arg("training") = false,
      py::arg("activation") = py::none(),
      "Batch normalization over the last axis: returns (y, mean, inv) with inv = 1/sqrt(var + epsilon). "
      "training: batch statistics (biased variance), and moving_mean/moving_variance (writable float32) are "
      "updated in place as moving * momentum + batch * (1 - momentum); else the moving statistics are used. "
      "gamma/beta may be None; activation None/'linear', 'relu' or 'relu6' is fused into the store.");

  m.def(
      "batchnorm_backward",
      [t](const py::object& dy_in, const py::object& x_in, const py::object& y_in, const py::object& gamma_in,
          const py::object& mean_in, const py::object& inv_in, const py::object& beta_in, bool training,
          const py::object& activation, bool need_dx, bool need_dg, bool need_db) {
        const std::string op = "batchnorm_backward";
        farray x = as_f32_contig(x_in, "batchnorm_backward: x");
        farray dy = as_f32_contig(dy_in, "batchnorm_backward: dy");
        const BatchNormParams p = bn_params(x, 1.0, 0.0, training, bn_act(activation, op), op);
        check_shape(shape_of(dy), shape_of(x), op + ": dy");
        farray y, g, b, mean, inv;
        const bool read_y = p.act != kBnNone && !y_in.is_none();
        if (read_y) {
          y = as_f32_contig(y_in, "batchnorm_backward: y");
          check_shape(shape_of(y), shape_of(x), op + ": y");
        }
        const float* gp = vec_or_null(gamma_in, g, p.C, "batchnorm_backward: gamma");
        const float* bp = vec_or_null(beta_in, b, p.C, "batchnorm_backward: beta");
        const float* mp = vec_or_null(mean_in, mean, p.C, "batchnorm_backward: mean");
        const float* ip = vec_or_null(inv_in, inv, p.C, "batchnorm_backward: inv");
        FASTNN_CHECK(mp && ip, op + ": mean and inv (from batchnorm_forward) are required");
        Grads d({shape_of(x), Shape{p.C}, Shape{p.C}}, {need_dx, need_dg, need_db});
        {
          py::gil_scoped_release nogil;
          t->vision.batchnorm_backward(d.ptr[0], d.ptr[1], d.ptr[2], dy.data(), x.data(), read_y ? y.data() : nullptr,
                                       gp, bp, mp, ip, p);
        }
        return d.tuple();
      },
      py::arg("dy"), py::arg("x"), py::arg("y"), py::arg("gamma"), py::arg("mean"), py::arg("inv"), py::kw_only(),
      py::arg("beta") = py::none(), py::arg("training") = false, py::arg("activation") = py::none(),
      py::arg("dx") = true, py::arg("dgamma") = true, py::arg("dbeta") = true,
      "Gradients (dx, dgamma, dbeta) of batchnorm_forward given dy; with a fused activation, its mask comes from y "
      "(the forward's output) or, when y is None, is recomputed from x, mean, inv, gamma and beta (the forward's "
      "beta, None for 0); training includes the batch statistics' gradient. None where not asked.");

  m.def(
      "layernorm_forward",
      [t](const py::object& x_in, const py::object& gamma_in, const py::object& beta_in, double epsilon) {
        const std::string op = "layernorm";
        farray x = as_f32_contig(x_in, "layernorm: x");
        const BatchNormParams p = bn_params(x, epsilon, 0.0, false, kBnNone, op);
        farray g, b;
        const float* gp = vec_or_null(gamma_in, g, p.C, "layernorm: gamma");
        const float* bp = vec_or_null(beta_in, b, p.C, "layernorm: beta");
        Shape rows = shape_of(x);
        rows.pop_back();
        farray y(shape_of(x)), mean(rows), inv(rows);
        {
          py::gil_scoped_release nogil;
          t->vision.layernorm_forward(y.mutable_data(), mean.mutable_data(), inv.mutable_data(), x.data(), gp, bp,
                                      p.N, p.C, p.epsilon);
        }
        return py::make_tuple(y, mean, inv);
      },
      py::arg("x"), py::arg("gamma") = py::none(), py::arg("beta") = py::none(), py::kw_only(),
      py::arg("epsilon") = 1e-3,
      "Layer normalization over the last axis: returns (y, mean, inv), mean and inv = 1/sqrt(var + epsilon) of "
      "shape x.shape[:-1] (biased variance); gamma/beta (C,) may be None.");

  m.def(
      "layernorm_backward",
      [t](const py::object& dy_in, const py::object& x_in, const py::object& gamma_in, const py::object& mean_in,
          const py::object& inv_in, bool need_dx, bool need_dg, bool need_db) {
        const std::string op = "layernorm_backward";
        farray x = as_f32_contig(x_in, "layernorm_backward: x");
        farray dy = as_f32_contig(dy_in, "layernorm_backward: dy");
        const BatchNormParams p = bn_params(x, 1.0, 0.0, false, kBnNone, op);
        check_shape(shape_of(dy), shape_of(x), op + ": dy");
        Shape rows = shape_of(x);
        rows.pop_back();
        farray g, mean = as_f32_contig(mean_in, "layernorm_backward: mean"), inv = as_f32_contig(inv_in, "layernorm_backward: inv");
        check_shape(shape_of(mean), rows, op + ": mean");
        check_shape(shape_of(inv), rows, op + ": inv");
        const float* gp = vec_or_null(gamma_in, g, p.C, "layernorm_backward: gamma");
        Grads d({shape_of(x), Shape{p.C}, Shape{p.C}}, {need_dx, need_dg, need_db});
        {
          py::gil_scoped_release nogil;
          t->vision.layernorm_backward(d.ptr[0], d.ptr[1], d.ptr[2], dy.data(), x.data(), gp, mean.data(), inv.data(),
                                       p.N, p.C);
        }
        return d.tuple();
      },
      py::arg("dy"), py::arg("x"), py::arg("gamma"), py::arg("mean"), py::arg("inv"), py::kw_only(),
      py::arg("dx") = true, py::arg("dgamma") = true, py::arg("dbeta") = true,
      "Gradients (dx, dgamma, dbeta) of layernorm_forward given dy; None where not asked.");
}
}  // namespace fastnn
