// Bindings of the convolution and pooling ops: Python arguments (int-or-pair, None) converted here,
// the geometry resolved by resolve/conv.cpp.
#include "bind/common.h"

namespace fastnn {
namespace {
// Largest stride, pool size or dilation accepted: far beyond any image, and small enough that window
// sizes (KH * KW) and dilated spans ((KH - 1) * DH) stay well inside the kernels' int64 index arithmetic.
constexpr int64_t kMaxPairArg = (int64_t(1) << 31) - 1;

// An int or a pair of ints (anything with __index__, e.g. numpy integers; not bool), each in
// [1, kMaxPairArg]: Keras accepts both forms for strides, pool_size and dilation_rate.
Pair pair_arg(const py::handle& h, const std::string& what) {
  const auto is_int = [](const py::handle& v) { return PyIndex_Check(v.ptr()) && !py::isinstance<py::bool_>(v); };
  const auto fail = [&]() {
    return py::type_error(what + " must be an int or a pair of ints, got " + std::string(py::repr(h)));
  };
  // Python ints beyond int64 saturate (pybind11's cast would raise "Unable to cast"), then get the
  // range check below
  const auto value = [](const py::handle& v) {
    int overflow = 0;
    const long long r = PyLong_AsLongLongAndOverflow(py::int_(py::reinterpret_borrow<py::object>(v)).ptr(), &overflow);
    return overflow ? (overflow > 0 ? INT64_MAX : INT64_MIN) : int64_t(r);
  };
  Pair r{};
  if (is_int(h)) {
    r[0] = r[1] = value(h);
  } else if (py::isinstance<py::sequence>(h) && !py::isinstance<py::str>(h) && py::len(h) == 2) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(h);
    for (int i = 0; i < 2; ++i) {
      if (!is_int(s[i])) throw fail();
      r[i] = value(s[i]);
    }
  } else {
    throw fail();
  }
  FASTNN_CHECK(r[0] >= 1 && r[1] >= 1, what + " must be >= 1, got " + std::string(py::repr(h)));
  FASTNN_CHECK(r[0] <= kMaxPairArg && r[1] <= kMaxPairArg,
               what + " must be <= " + std::to_string(kMaxPairArg) + ", got " + std::string(py::repr(h)));
  return r;
}

Conv2dParams conv_params(const farray& x, const farray& k, const py::handle& strides, const std::string& padding,
                         const py::handle& dilation, const std::string& op) {
  check_conv2d_operands(shape_of(x), shape_of(k), op);  // before the pair arguments, as always
  const Pair s = pair_arg(strides, op + ": strides"), d = pair_arg(dilation, op + ": dilation_rate");
  return resolve_conv2d(shape_of(x), shape_of(k), s, padding, d, op);
}

// activation: None, "linear" or "none" (no activation), or "relu" (fused into the store).
int act_arg(const py::object& a, const std::string& op) {
  if (a.is_none()) return kActNone;
  if (!py::isinstance<py::str>(a)) throw py::type_error(op + ": activation must be None or a string");
  const std::string s = a.cast<std::string>();
  FASTNN_CHECK(s == "relu" || s == "linear" || s == "none",
               op + ": activation must be None, 'linear' or 'relu', got '" + s + "'");
  return s == "relu" ? kActRelu : kActNone;
}
}  // namespace

void bind_conv(py::module_& m, const KernelTable* t) {
  m.def(
      "conv2d_forward",
      [t](const py::object& x_in, const py::object& k_in, const py::object& bias_in, const py::object& strides,
          const std::string& padding, const py::object& dilation, const py::object& activation,
          const py::object& out) {
        const std::string op = "conv2d";
        const int act = act_arg(activation, op);
        farray x = as_f32_contig(x_in, "conv2d: x"), k = as_f32_contig(k_in, "conv2d: kernel");
        const Conv2dParams p = conv_params(x, k, strides, padding, dilation, op);
        farray bias;  // NOTE: a default farray is an empty array, not null: test bias_in instead
        if (!bias_in.is_none()) {
          bias = as_f32_contig(bias_in, "conv2d: bias");
          check_shape(shape_of(bias), {p.OC}, "conv2d: bias");
        }
        farray o = out_or_new(out, {p.B, p.OH, p.OW, p.OC}, "conv2d");
        check_out_disjoint(o, x, op, "x");
        check_out_disjoint(o, k, op, "kernel");
        if (!bias_in.is_none()) check_out_disjoint(o, bias, op, "bias");
        const float* bp = bias_in.is_none() ? nullptr : bias.data();
        py::gil_scoped_release nogil;
        t->conv.conv2d_forward(o.mutable_data(), x.data(), k.data(), bp, act, p);
        return o;
      },
      py::arg("x"), py::arg("kernel"), py::arg("bias") = py::none(), py::kw_only(), py::arg("strides") = 1,
      py::arg("padding") = "valid", py::arg("dilation_rate") = 1, py::arg("activation") = py::none(),
      py::arg("out") = py::none(),
      "2-D convolution: x (B,H,W,C) * kernel (KH,KW,C,OC) (+ bias (OC,)) -> (B,OH,OW,OC), Keras padding; "
      "activation None/'linear' or 'relu' (fused).");

  m.def(
      "conv2d_backward",
      [t](const py::object& dout_in, const py::object& x_in, const py::object& k_in, const py::object& strides,
          const std::string& padding, const py::object& dilation, bool need_dx, bool need_dkernel, bool need_dbias) {
        const std::string op = "conv2d_backward";
        farray x = as_f32_contig(x_in, "conv2d_backward: x"), k = as_f32_contig(k_in, "conv2d_backward: kernel");
        farray dout = as_f32_contig(dout_in, "conv2d_backward: dout");
        const Conv2dParams p = conv_params(x, k, strides, padding, dilation, op);
        check_shape(shape_of(dout), {p.B, p.OH, p.OW, p.OC}, "conv2d_backward: dout");
        py::object dx = py::none(), dk = py::none(), db = py::none();
        float *dxp = nullptr, *dkp = nullptr, *dbp = nullptr;
        // uninitialised: backward kernels write their gradients
        if (need_dx) { farray a(shape_of(x)); dxp = a.mutable_data(); dx = a; }
        if (need_dkernel) { farray a(shape_of(k)); dkp = a.mutable_data(); dk = a; }
        if (need_dbias) { farray a(std::vector<int64_t>{p.OC}); dbp = a.mutable_data(); db = a; }
        {
          py::gil_scoped_release nogil;
          t->conv.conv2d_backward(dxp, dkp, dbp, dout.data(), x.data(), k.data(), p);
        }
        return py::make_tuple(dx, dk, db);
      },
      py::arg("dout"), py::arg("x"), py::arg("kernel"), py::kw_only(), py::arg("strides") = 1,
      py::arg("padding") = "valid", py::arg("dilation_rate") = 1, py::arg("dx") = true, py::arg("dkernel") = true,
      py::arg("dbias") = true,
      "Gradients (dx, dkernel, dbias) of conv2d given dout (B,OH,OW,OC); an entry is None when its flag is False.");

  // Pooling. The argument set (pool_size, strides, padding) is resolved by pool_args for every entry.
  struct PoolIO {
    farray x;
    Pool2dParams p;
  };
  const auto pool_args = [](const py::object& x_in, const py::object& pool_size, const py::object& strides,
                            const std::string& padding, const std::string& op) {
    farray x = as_f32_contig(x_in, (op + ": x").c_str());
    check_nhwc(shape_of(x), op, "x");
    const Pair k = pair_arg(pool_size, op + ": pool_size");
    const std::optional<Pair> s =
        strides.is_none() ? std::nullopt : std::optional<Pair>(pair_arg(strides, op + ": strides"));
    return PoolIO{x, resolve_pool2d(shape_of(x), k, s, padding, op)};
  };
  const auto dout_arg = [](const py::object& dout_in, const Pool2dParams& p, const std::string& op) {
    farray dout = as_f32_contig(dout_in, (op + ": dout").c_str());
    check_shape(shape_of(dout), {p.B, p.OH, p.OW, p.C}, op + ": dout");
    return dout;
  };
  using u8array = py::array_t<uint8_t, py::array::c_style>;

  m.def(
      "maxpool2d_forward",
      [t, pool_args](const py::object& x_in, const py::object& pool_size, const py::object& strides,
                     const std::string& padding, const py::object& out, bool return_argmax) -> py::object {
        const PoolIO a = pool_args(x_in, pool_size, strides, padding, "maxpool2d");
        const Pool2dParams& p = a.p;
        farray o = out_or_new(out, {p.B, p.OH, p.OW, p.C}, "maxpool2d");
        check_out_disjoint(o, a.x, "maxpool2d", "x");
        const bool keep = return_argmax && p.KH * p.KW <= 255;  // cell numbers fit a byte
        u8array arg = keep ? u8array({p.B, p.OH, p.OW, p.C}) : u8array();
        {
          py::gil_scoped_release nogil;
          t->conv.maxpool2d_forward(o.mutable_data(), keep ? arg.mutable_data() : nullptr, a.x.data(), p);
        }
        if (!return_argmax) return std::move(o);
        return py::make_tuple(o, keep ? py::object(arg) : py::none());
      },
      py::arg("x"), py::kw_only(), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
      py::arg("padding") = "valid", py::arg("out") = py::none(), py::arg("return_argmax") = false,
      "Max pooling of x (B,H,W,C) -> (B,OH,OW,C); strides default to pool_size. With return_argmax, returns "
      "(out, argmax): uint8 window cell numbers for maxpool2d_backward (None for windows over 255 cells).");

  m.def(
      "maxpool2d_backward",
      [t, pool_args, dout_arg](const py::object& dout_in, const py::object& x_in, const py::object& pool_size,
                               const py::object& strides, const std::string& padding, const py::object& argmax) {
        const std::string op = "maxpool2d_backward";
        const PoolIO a = pool_args(x_in, pool_size, strides, padding, op);
        const Pool2dParams& p = a.p;
        farray dout = dout_arg(dout_in, p, op);
        u8array arg;
        if (!argmax.is_none()) {
          FASTNN_CHECK(py::isinstance<py::array>(argmax) && py::array(argmax).dtype().is(py::dtype::of<uint8_t>()),
                       op + ": argmax must be the uint8 array returned by maxpool2d_forward");
          arg = u8array::ensure(argmax);  // C-contiguous (copied if it was not)
          FASTNN_CHECK(std::vector<int64_t>(arg.shape(), arg.shape() + arg.ndim()) ==
                           std::vector<int64_t>({p.B, p.OH, p.OW, p.C}),
                       op + ": argmax has shape " + shape_str(arg) + ", expected " + shape_str(shape_of(dout)));
        }
        farray dx(shape_of(a.x));
        py::gil_scoped_release nogil;
        t->conv.maxpool2d_backward(dx.mutable_data(), dout.data(), a.x.data(), argmax.is_none() ? nullptr : arg.data(), p);
        return dx;
      },
      py::arg("dout"), py::arg("x"), py::kw_only(), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
      py::arg("padding") = "valid", py::arg("argmax") = py::none(),
      "Gradient dx (the shape of x) of max pooling given dout; argmax from maxpool2d_forward skips re-reading x.");

  m.def(
      "avgpool2d_forward",
      [t, pool_args](const py::object& x_in, const py::object& pool_size, const py::object& strides,
                     const std::string& padding, const py::object& out) {
        const PoolIO a = pool_args(x_in, pool_size, strides, padding, "avgpool2d");
        farray o = out_or_new(out, {a.p.B, a.p.OH, a.p.OW, a.p.C}, "avgpool2d");
        check_out_disjoint(o, a.x, "avgpool2d", "x");
        py::gil_scoped_release nogil;
        t->conv.avgpool2d_forward(o.mutable_data(), a.x.data(), a.p);
        return o;
      },
      py::arg("x"), py::kw_only(), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
      py::arg("padding") = "valid", py::arg("out") = py::none(),
      "Average pooling of x (B,H,W,C) -> (B,OH,OW,C) over each window's cells inside the image.");

  m.def(
      "avgpool2d_backward",
      [t, pool_args, dout_arg](const py::object& dout_in, const py::object& x_in, const py::object& pool_size,
                               const py::object& strides, const std::string& padding) {
        const std::string op = "avgpool2d_backward";
        const PoolIO a = pool_args(x_in, pool_size, strides, padding, op);
        farray dout = dout_arg(dout_in, a.p, op);
        farray dx(shape_of(a.x));
        py::gil_scoped_release nogil;
        t->conv.avgpool2d_backward(dx.mutable_data(), dout.data(), a.p);
        return dx;
      },
      py::arg("dout"), py::arg("x"), py::kw_only(), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
      py::arg("padding") = "valid", "Gradient dx (the shape of x; only its shape is read) of average pooling.");
}
}  // namespace fastnn
