#include "bind/common.h"

#include <algorithm>
#include <utility>

namespace fastnn {
namespace {
// The input as an array of its own dtype (no copy when it is one already), refusing what float32
// conversion would silently mangle: complex values (numpy keeps only the real part) and object arrays
// (element-by-element conversion of arbitrary Python objects, e.g. None). Null when not array-like.
py::array real_array(const py::handle& h, const char* name) {
  if (farray::check_(h)) return py::reinterpret_borrow<py::array>(h);  // float32 already: the hot path, no checks
  py::array a = py::isinstance<py::array>(h) ? py::reinterpret_borrow<py::array>(h) : py::array::ensure(h);
  if (!a) return a;
  const char kind = a.dtype().kind();
  if (kind == 'c' || kind == 'O')
    throw py::type_error(std::string(name) + ": expected an array-like of real numbers, got dtype " +
                         std::string(py::str(a.dtype())));
  return a;
}
}  // namespace

farray as_f32(const py::handle& h, const char* name) {
  farray a = farray::ensure(real_array(h, name));
  if (!a) throw py::type_error(std::string(name) + ": expected an array-like of numbers");
  for (int ax = 0; ax < a.ndim(); ++ax)
    if (a.strides(ax) % int64_t(sizeof(float)) != 0) return as_f32_contig(a, name);
  return a;
}

farray as_f32_contig(const py::handle& h, const char* name) {
  auto a = py::array_t<float, py::array::forcecast | py::array::c_style>::ensure(real_array(h, name));
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

namespace {
// [lo, hi) byte range an array's elements span (strides may be negative or zero).
std::pair<const char*, const char*> byte_span(const py::array& a) {
  const char* lo = static_cast<const char*>(a.data());
  const char* hi = lo + a.itemsize();
  for (int ax = 0; ax < a.ndim(); ++ax) {
    const int64_t reach = (a.shape(ax) - 1) * int64_t(a.strides(ax));
    (reach < 0 ? lo : hi) += reach;
  }
  return {lo, hi};
}
}  // namespace

void check_out_disjoint(const farray& out, const py::array& in, const std::string& op, const char* in_name,
                        bool exact_ok) {
  if (out.size() == 0 || in.size() == 0) return;
  const auto o = byte_span(out), i = byte_span(in);
  if (o.second <= i.first || i.second <= o.first) return;
  const bool exact = out.data() == in.data() && out.ndim() == in.ndim() &&
                     std::equal(out.shape(), out.shape() + out.ndim(), in.shape()) &&
                     std::equal(out.strides(), out.strides() + out.ndim(), in.strides());
  FASTNN_CHECK(exact_ok && exact, op + ": out overlaps input " + in_name + "; pass a separate array");
}
}  // namespace fastnn
