#include "bind/common.h"

namespace fastnn {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

std::string shape_str(const py::array& a) {
  return shape_str(shape_of(a));
}

farray as_f32(const py::handle& h, const char* name) {
  farray a = farray::ensure(h);
  if (!a) throw py::type_error(std::string(name) + ": expected an array-like of numbers");
  for (int ax = 0; ax < a.ndim(); ++ax)
    if (a.strides(ax) % int64_t(sizeof(float)) != 0) return as_f32_contig(a, name);
  return a;
}

farray as_f32_contig(const py::handle& h, const char* name) {
  auto a = py::array_t<float, py::array::forcecast | py::array::c_style>::ensure(h);
  if (!a) throw py::type_error(std::string(name) + ": expected an array-like of numbers");
  return a;
}

void check_same_shape(const py::array& a, const py::array& b, const std::string& what) {
  FASTNN_CHECK(shape_of(a) == shape_of(b), what + " have different shapes: " + shape_str(a) + " and " + shape_str(b));
}

void check_shape(const py::array& a, const std::vector<int64_t>& want, const std::string& what) {
  FASTNN_CHECK(shape_of(a) == want, what + " has shape " + shape_str(a) + ", expected " + shape_str(want));
}

farray out_or_new(const py::object& out, const std::vector<int64_t>& shape, const char* name) {
  if (out.is_none()) return farray(shape);
  if (!py::isinstance<py::array>(out)) throw py::type_error(std::string(name) + ": out must be a numpy array");
  py::array o = out;
  FASTNN_CHECK(o.dtype().is(py::dtype::of<float>()),
               std::string(name) + ": out must be float32, got " + std::string(py::str(o.dtype())));
  FASTNN_CHECK(o.writeable(), std::string(name) + ": out is read-only");
  FASTNN_CHECK((o.flags() & py::array::c_style) != 0, std::string(name) + ": out must be C-contiguous");
  std::vector<int64_t> s(o.shape(), o.shape() + o.ndim());
  FASTNN_CHECK(s == shape, std::string(name) + ": out has shape " + shape_str(s) + ", expected " + shape_str(shape));
  return farray::ensure(o);
}
}  // namespace fastnn
