// Bindings of the image resample op -> ImageOps (geometry resolved by resolve/resample.cpp).
#include "bind/common.h"

namespace fastnn {
namespace {
std::pair<int64_t, int64_t> size_arg(const py::handle& h, const std::string& what) {
  if (!py::isinstance<py::sequence>(h) || py::isinstance<py::str>(h) || py::len(h) != 2)
    throw py::type_error(what + " must be a pair of ints (height, width), got " + std::string(py::repr(h)));
  py::sequence s = py::reinterpret_borrow<py::sequence>(h);
  int64_t v[2];
  for (int i = 0; i < 2; ++i) {
    if (!PyIndex_Check(s[i].ptr()) || py::isinstance<py::bool_>(s[i]))
      throw py::type_error(what + " must be a pair of ints (height, width), got " + std::string(py::repr(h)));
    int overflow = 0;
    const py::int_ value(py::reinterpret_borrow<py::object>(s[i]));
    const long long r = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
    FASTNN_CHECK(!overflow && r >= 1 && r <= (int64_t(1) << 31),
                 what + " must hold sizes in [1, 2**31], got " + std::string(py::repr(h)));
    v[i] = r;
  }
  return {v[0], v[1]};
}
}  // namespace

void bind_resample(py::module_& m, const KernelTable* t) {
  const ImageOps* ops = &t->image;
  m.def(
      "resample_forward",
      [ops](const py::object& x_in, const py::object& t_in, const py::object& size, const std::string& interpolation,
            const std::string& fill_mode, float fill_value, const py::object& out) {
        const std::string op = "resample_forward";
        farray x = as_f32_contig(x_in, "resample_forward: images");
        farray tr = as_f32_contig(t_in, "resample_forward: transforms");
        const auto hw = size.is_none() ? std::pair<int64_t, int64_t>{x.ndim() == 4 ? x.shape(1) : 1,
                                                                     x.ndim() == 4 ? x.shape(2) : 1}
                                       : size_arg(size, op + ": output_size");
        const ResampleParams p =
            resolve_resample(shape_of(x), shape_of(tr), hw.first, hw.second, interpolation, fill_mode, fill_value, op);
        farray y = out_or_new(out, {p.B, p.OH, p.OW, p.C}, op.c_str());
        check_out_disjoint(y, x, op, "images");
        check_out_disjoint(y, tr, op, "transforms");
        {
          py::gil_scoped_release nogil;
          ops->resample_forward(y.mutable_data(), x.data(), tr.data(), p);
        }
        return y;
      },
      py::arg("images"), py::arg("transforms"), py::arg("output_size") = py::none(),
      py::arg("interpolation") = "bilinear", py::arg("fill_mode") = "constant", py::arg("fill_value") = 0.0f,
      py::kw_only(), py::arg("out") = py::none(),
      "Affine/projective resample of NHWC images (TF ImageProjectiveTransformV3 semantics): transforms (B or 1, 8) "
      "map output pixel (x, y) to the input point ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), "
      "k = c0 x + c1 y + 1; output_size (OH, OW) defaults to the input's.");
  m.def(
      "resample_backward",
      [ops](const py::object& dy_in, const py::object& t_in, const py::object& input_shape,
            const std::string& interpolation, const std::string& fill_mode, const py::object& out) {
        const std::string op = "resample_backward";
        farray dy = as_f32_contig(dy_in, "resample_backward: dy");
        farray tr = as_f32_contig(t_in, "resample_backward: transforms");
        const auto hw = size_arg(input_shape, op + ": input_size");
        check_nhwc(shape_of(dy), op, "dy");
        const Shape xs = {dy.shape(0), hw.first, hw.second, dy.shape(3)};
        ResampleParams p = resolve_resample(xs, shape_of(tr), dy.shape(1), dy.shape(2), interpolation, fill_mode,
                                            0.0f, op);
        // the input's element count must fit as well (resolve_resample checked the output's)
        int64_t n = 0;
        FASTNN_CHECK(!__builtin_mul_overflow(xs[0], xs[1], &n) && !__builtin_mul_overflow(n, xs[2], &n) &&
                         !__builtin_mul_overflow(n, xs[3], &n) && n < INT64_MAX / 4,
                     op + ": input " + shape_str(xs) + " is too large");
        farray dx = out_or_new(out, xs, op.c_str());
        check_out_disjoint(dx, dy, op, "dy");
        check_out_disjoint(dx, tr, op, "transforms");
        {
          py::gil_scoped_release nogil;
          ops->resample_backward(dx.mutable_data(), dy.data(), tr.data(), p);
        }
        return dx;
      },
      py::arg("dy"), py::arg("transforms"), py::arg("input_size"), py::arg("interpolation") = "bilinear",
      py::arg("fill_mode") = "constant", py::kw_only(), py::arg("out") = py::none(),
      "Gradient of resample_forward with respect to the images: dx (B, H, W, C) for input_size (H, W).");
}
}  // namespace fastnn
