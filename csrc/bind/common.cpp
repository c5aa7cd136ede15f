#include "bind/common.h"

namespace fastnn {
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

farray out_or_new(const py::object& out, const std::vector<int64_t>& shape, const char* name) {
  if (out.is_none()) return farray(shape);
  if (!py::isinstance<py::array>(out)) throw py::type_error(std::string(name) + ": out must be a numpy array");
  py::array o = out;
  FASTNN_CHECK(o.dtype().is(py::dtype::of<float>()),
               std::string(name) + ": out must be float32, got " + std::string(py::str(o.dtype())));
  FASTNN_CHECK(o.writeable(), std::string(name) + ": out is read-only");
  FASTNN_CHECK((o.flags() & py::array::c_style) != 0, std::string(name) + ": out must be C-contiguous");
  check_shape(shape_of(o), shape, std::string(name) + ": out");
  return farray::ensure(o);
}
}  // namespace fastnn
