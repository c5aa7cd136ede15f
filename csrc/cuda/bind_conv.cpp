// conv2d and pooling on device arrays, with the names and arguments of csrc/bind/conv.cpp. conv2d is im2col
// (conv.cu) + the GEMM backend (tiled or cuBLAS); a 1x1 stride-1 unpadded convolution skips the im2col.
// maxpool2d keeps no argmax on the device: return_argmax gives (out, None), and the backward recomputes the
// window maxima from x (the CPU API's argmax=None path).
#include <optional>
#include <string>

#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace fastnn {
namespace cuda {
namespace {
Pair pair_arg(const py::handle& h, const std::string& what) {
  Pair r{};
  try {
    if (py::isinstance<py::int_>(h) && !py::isinstance<py::bool_>(h)) {
      r[0] = r[1] = h.cast<int64_t>();
    } else {
      const auto v = h.cast<std::vector<int64_t>>();
      if (v.size() != 2 || py::isinstance<py::str>(h)) throw py::cast_error();
      r = {v[0], v[1]};
    }
  } catch (const py::cast_error&) {
    throw py::type_error(what + " must be an int or a pair of ints, got " + std::string(py::repr(h)));
  }
  FASTNN_CHECK(r[0] >= 1 && r[1] >= 1, what + " must be >= 1, got " + std::string(py::repr(h)));
  return r;
}

int act_arg(const py::object& a, const std::string& op) {
  if (a.is_none()) return kActNone;
  if (!py::isinstance<py::str>(a)) throw py::type_error(op + ": activation must be None or a string");
  const std::string s = a.cast<std::string>();
  FASTNN_CHECK(s == "relu" || s == "linear" || s == "none",
               op + ": activation must be None, 'linear' or 'relu', got '" + s + "'");
  return s == "relu" ? kActRelu : kActNone;
}

struct ConvIO {
  Array x, k;
  Conv2dParams p;
  bool pointwise;  // 1x1, stride 1, no padding: x itself is the im2col matrix
};
ConvIO conv_args(const py::object& x_in, const py::object& k_in, const py::object& strides, const std::string& padding,
                 const py::object& dilation, const std::string& op) {
  Array& x = as_dev(x_in, op + ": x");
  Array& k = as_dev(k_in, op + ": kernel");
  check_same_device(k, x, op + ": kernel");
  use_device(x);
  check_conv2d_operands(x.shape, k.shape, op);
  const Pair s = pair_arg(strides, op + ": strides"), d = pair_arg(dilation, op + ": dilation_rate");
  const Conv2dParams p = resolve_conv2d(x.shape, k.shape, s, padding, d, op);
  const bool pw = p.KH == 1 && p.KW == 1 && p.SH == 1 && p.SW == 1 && p.pad_top == 0 && p.pad_left == 0;
  return {x, k, p, pw};
}

// (B*OH*OW, KH*KW*C) patches of x (x itself for a pointwise convolution).
Array columns(const ConvIO& a) {
  if (a.pointwise) return a.x;
  const Conv2dParams& p = a.p;
  Array col = Array::empty({p.B * p.OH * p.OW, p.KH * p.KW * p.C}, DType::f32, a.x.device());
  if (col.size()) im2col(col.f32(), a.x.f32(), p);
  return col;
}

// C (M, N) = op(A) (M, K) @ op(B) (K, N) for dense row-major operands.
void matmul(float* C, const float* A, bool ta, const float* B, bool tb, int64_t M, int64_t N, int64_t K,
            const float* bias, int act, int device) {
  if (M == 0 || N == 0) return;
  GemmParams g{};
  g.M = M; g.N = N; g.K = K; g.alpha = 1.0f; g.beta = 0.0f;
  g.A = A; g.rsa = ta ? 1 : K; g.csa = ta ? M : 1;
  g.B = B; g.rsb = tb ? 1 : N; g.csb = tb ? K : 1;
  g.C = C; g.ldc = N; g.bias = bias; g.act = act;
  gemm_run(g, device);
}

struct PoolIO {
  Array x;
  Pool2dParams p;
};
PoolIO pool_args(const py::object& x_in, const py::object& pool_size, const py::object& strides,
                 const std::string& padding, const std::string& op) {
  Array& x = as_dev(x_in, op + ": x");
  use_device(x);
  check_nhwc(x.shape, op, "x");
  const Pair k = pair_arg(pool_size, op + ": pool_size");
  const std::optional<Pair> s = strides.is_none() ? std::nullopt : std::optional<Pair>(pair_arg(strides, op + ": strides"));
  return {x, resolve_pool2d(x.shape, k, s, padding, op)};
}
Array dout_arg(const py::object& dout_in, const PoolIO& a, const std::string& op) {
  Array& d = as_dev(dout_in, op + ": dout");
  check_same_device(d, a.x, op + ": dout");
  check_shape(d.shape, {a.p.B, a.p.OH, a.p.OW, a.p.C}, op + ": dout");
  return d;
}
void launched(const std::string& op) { check(cudaGetLastError(), op.c_str()); }
}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d_forward", [](const py::object& x_in, const py::object& k_in, const py::object& bias_in,
                             const py::object& strides, const std::string& padding, const py::object& dilation,
                             const py::object& activation, const py::object& out) {
    const std::string op = "conv2d";
    const int act = act_arg(activation, op);
    const ConvIO a = conv_args(x_in, k_in, strides, padding, dilation, op);
    const Conv2dParams& p = a.p;
    const float* bias = nullptr;
    if (!bias_in.is_none()) {
      Array& b = as_dev(bias_in, "conv2d: bias");
      check_shape(b.shape, {p.OC}, "conv2d: bias");
      check_same_device(b, a.x, "conv2d: bias");
      bias = b.f32();
    }
    Array o = out_or_new(out, {p.B, p.OH, p.OW, p.OC}, op, a.x);
    check_disjoint(o, a.x, op, "x");
    check_disjoint(o, a.k, op, "kernel");
    const Array col = columns(a);
    matmul(o.f32(), col.f32(), false, a.k.f32(), false, p.B * p.OH * p.OW, p.OC, p.KH * p.KW * p.C, bias, act,
           a.x.device());
    launched(op);
    return o;
  }, py::arg("x"), py::arg("kernel"), py::arg("bias") = py::none(), py::kw_only(), py::arg("strides") = 1,
     py::arg("padding") = "valid", py::arg("dilation_rate") = 1, py::arg("activation") = py::none(),
     py::arg("out") = py::none());

  m.def("conv2d_backward", [](const py::object& dout_in, const py::object& x_in, const py::object& k_in,
                              const py::object& strides, const std::string& padding, const py::object& dilation,
                              bool need_dx, bool need_dkernel, bool need_dbias) {
    const std::string op = "conv2d_backward";
    const ConvIO a = conv_args(x_in, k_in, strides, padding, dilation, op);
    const Conv2dParams& p = a.p;
    Array& dout = as_dev(dout_in, op + ": dout");
    check_shape(dout.shape, {p.B, p.OH, p.OW, p.OC}, op + ": dout");
    check_same_device(dout, a.x, op + ": dout");
    const int64_t M = p.B * p.OH * p.OW, KC = p.KH * p.KW * p.C;
    const int dev = a.x.device();
    py::object dx = py::none(), dk = py::none(), db = py::none();
    if (need_dkernel) {  // dkernel (KC, OC) = col^T @ dout
      const Array col = columns(a);
      Array g = Array::empty(a.k.shape, DType::f32, dev);
      matmul(g.f32(), col.f32(), true, dout.f32(), false, KC, p.OC, M, nullptr, kActNone, dev);
      dk = py::cast(g);
    }
    if (need_dbias) {  // dbias (OC,) = ones (1, M) @ dout
      Array ones = Array::empty({M}, DType::f32, dev), g = Array::empty({p.OC}, DType::f32, dev);
      fill(ones.f32(), 1.0f, M);
      matmul(g.f32(), ones.f32(), false, dout.f32(), false, 1, p.OC, M, nullptr, kActNone, dev);
      db = py::cast(g);
    }
    if (need_dx) {  // dcol (M, KC) = dout @ kernel^T, then summed back onto x
      Array g = Array::empty(a.x.shape, DType::f32, dev);
      if (a.pointwise) {
        matmul(g.f32(), dout.f32(), false, a.k.f32(), true, M, KC, p.OC, nullptr, kActNone, dev);
      } else {
        Array dcol = Array::empty({M, KC}, DType::f32, dev);
        matmul(dcol.f32(), dout.f32(), false, a.k.f32(), true, M, KC, p.OC, nullptr, kActNone, dev);
        if (g.size()) col2im(g.f32(), dcol.f32(), p);
      }
      dx = py::cast(g);
    }
    launched(op);
    return py::make_tuple(dx, dk, db);
  }, py::arg("dout"), py::arg("x"), py::arg("kernel"), py::kw_only(), py::arg("strides") = 1,
     py::arg("padding") = "valid", py::arg("dilation_rate") = 1, py::arg("dx") = true, py::arg("dkernel") = true,
     py::arg("dbias") = true);

  m.def("maxpool2d_forward", [](const py::object& x_in, const py::object& pool_size, const py::object& strides,
                                const std::string& padding, const py::object& out, bool return_argmax) -> py::object {
    const PoolIO a = pool_args(x_in, pool_size, strides, padding, "maxpool2d");
    Array o = out_or_new(out, {a.p.B, a.p.OH, a.p.OW, a.p.C}, "maxpool2d", a.x);
    check_disjoint(o, a.x, "maxpool2d", "x");
    if (o.size()) maxpool2d_forward(o.f32(), a.x.f32(), a.p);
    launched("maxpool2d");
    if (!return_argmax) return py::cast(o);
    return py::make_tuple(o, py::none());
  }, py::arg("x"), py::kw_only(), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
     py::arg("padding") = "valid", py::arg("out") = py::none(), py::arg("return_argmax") = false);
  m.def("maxpool2d_backward", [](const py::object& dout_in, const py::object& x_in, const py::object& pool_size,
                                 const py::object& strides, const std::string& padding, const py::object& argmax) {
    const std::string op = "maxpool2d_backward";
    const PoolIO a = pool_args(x_in, pool_size, strides, padding, op);
    const Array dout = dout_arg(dout_in, a, op);
    FASTNN_CHECK(argmax.is_none(), op + ": argmax must be None on a CUDA device (maxpool2d_forward returns None)");
    Array dx = Array::empty(a.x.shape, DType::f32, a.x.device());
    if (dx.size()) maxpool2d_backward(dx.f32(), dout.f32(), a.x.f32(), a.p);
    launched(op);
    return dx;
  }, py::arg("dout"), py::arg("x"), py::kw_only(), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
     py::arg("padding") = "valid", py::arg("argmax") = py::none());
  m.def("avgpool2d_forward", [](const py::object& x_in, const py::object& pool_size, const py::object& strides,
                                const std::string& padding, const py::object& out) {
    const PoolIO a = pool_args(x_in, pool_size, strides, padding, "avgpool2d");
    Array o = out_or_new(out, {a.p.B, a.p.OH, a.p.OW, a.p.C}, "avgpool2d", a.x);
    check_disjoint(o, a.x, "avgpool2d", "x");
    if (o.size()) avgpool2d_forward(o.f32(), a.x.f32(), a.p);
    launched("avgpool2d");
    return o;
  }, py::arg("x"), py::kw_only(), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
     py::arg("padding") = "valid", py::arg("out") = py::none());
  m.def("avgpool2d_backward", [](const py::object& dout_in, const py::object& x_in, const py::object& pool_size,
                                 const py::object& strides, const std::string& padding) {
    const std::string op = "avgpool2d_backward";
    const PoolIO a = pool_args(x_in, pool_size, strides, padding, op);
    const Array dout = dout_arg(dout_in, a, op);
    Array dx = Array::empty(a.x.shape, DType::f32, a.x.device());
    if (dx.size()) avgpool2d_backward(dx.f32(), dout.f32(), a.p);
    launched(op);
    return dx;
  }, py::arg("dout"), py::arg("x"), py::kw_only(), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
     py::arg("padding") = "valid");
}
}  // namespace cuda
}  // namespace fastnn
