// fastnn._cuda.Array: a dense C-contiguous float32/int32 array in GPU memory, its host<->device copies and
// DLPack exchange (__dlpack__ / __dlpack_device__ out, from_dlpack in, zero-copy both ways).
#include <cstring>

#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace fastnn {
namespace cuda {
namespace {
// DLPack (dmlc/dlpack v0.8, the "dltensor" capsule every framework accepts), the subset used here.
struct DLDevice { int32_t device_type; int32_t device_id; };
struct DLDataType { uint8_t code; uint8_t bits; uint16_t lanes; };
struct DLTensor {
  void* data; DLDevice device; int32_t ndim; DLDataType dtype; int64_t* shape; int64_t* strides; uint64_t byte_offset;
};
struct DLManagedTensor { DLTensor dl_tensor; void* manager_ctx; void (*deleter)(DLManagedTensor*); };
constexpr int32_t kDLCUDA = 2;
constexpr uint8_t kDLInt = 0, kDLFloat = 2;

struct Export {  // what an exported capsule keeps alive
  std::shared_ptr<Block> block;
  Shape shape, strides;
  DLManagedTensor dl;
};

void export_deleter(DLManagedTensor* t) { delete static_cast<Export*>(t->manager_ctx); }

void capsule_destructor(PyObject* cap) {  // a capsule nobody consumed still owns its tensor
  if (PyCapsule_IsValid(cap, "dltensor")) {
    auto* t = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
    if (t && t->deleter) t->deleter(t);
  } else {
    PyErr_Clear();
  }
}

Shape c_strides(const Shape& shape) {
  Shape s(shape.size());
  int64_t st = 1;
  for (size_t i = shape.size(); i-- > 0;) { s[i] = st; st *= shape[i]; }
  return s;
}

DType dtype_from_numpy(const py::dtype& dt, const std::string& what) {
  if (dt.is(py::dtype::of<float>())) return DType::f32;
  if (dt.is(py::dtype::of<int32_t>())) return DType::i32;
  throw py::type_error(what + ": only float32 and int32 arrays live on a CUDA device, got " +
                       std::string(py::str(dt)));
}

int parse_device(const py::object& device) {
  if (py::isinstance<py::int_>(device)) return device.cast<int>();
  const std::string s = py::str(device);
  const auto colon = s.find(':');
  const int index = colon == std::string::npos ? 0 : std::stoi(s.substr(colon + 1));
  const int n = device_count();
  if (index < 0 || index >= n)
    throw std::runtime_error("fastnn cuda: device " + s + " is not usable (" + std::to_string(n) +
                             " CUDA device(s) usable now)");
  return index;
}

Array to_device(const py::object& host, const py::object& device) {
  py::array a = py::array::ensure(host);
  if (!a) throw py::type_error("to_device: expected an array-like");
  const int dev = parse_device(device);
  if (a.dtype().kind() == 'f' && !a.dtype().is(py::dtype::of<float>())) a = py::array_t<float>::ensure(a);
  if (a.dtype().kind() == 'i' || a.dtype().kind() == 'u')
    if (!a.dtype().is(py::dtype::of<int32_t>())) a = py::array_t<int32_t>::ensure(a);
  const DType dt = dtype_from_numpy(a.dtype(), "to_device");
  a = py::array::ensure(a, py::array::c_style);
  Array out = Array::empty(Shape(a.shape(), a.shape() + a.ndim()), dt, dev);
  check(cudaMemcpy(out.f32(), a.data(), size_t(out.size()) * dtype_size(dt), cudaMemcpyHostToDevice),
        "copy to device");
  return out;
}

py::array to_host(const Array& a) {
  py::array out = a.dtype == DType::f32 ? py::array(py::array_t<float>(a.shape)) : py::array(py::array_t<int32_t>(a.shape));
  if (a.size()) {
    check(cudaSetDevice(a.device()), "cudaSetDevice");
    check(cudaMemcpy(out.mutable_data(), a.f32(), size_t(a.size()) * dtype_size(a.dtype), cudaMemcpyDeviceToHost),
          "copy to host");
  }
  return out;
}

py::capsule dlpack(const Array& a, const py::object& stream) {
  // Our kernels run on a blocking stream, which the legacy default stream (1) waits for; a consumer naming
  // another stream gets a full sync first (rare: exchange is not on the hot path).
  if (!stream.is_none() && stream.cast<int64_t>() != 1) check(cudaDeviceSynchronize(), "dlpack sync");
  auto* e = new Export{a.block, a.shape, c_strides(a.shape), {}};
  DLTensor& t = e->dl.dl_tensor;
  t.data = a.f32();
  t.device = {kDLCUDA, a.device()};
  t.ndim = int32_t(a.shape.size());
  t.dtype = {a.dtype == DType::f32 ? kDLFloat : kDLInt, 32, 1};
  t.shape = e->shape.data();
  t.strides = e->strides.data();
  t.byte_offset = 0;
  e->dl.manager_ctx = e;
  e->dl.deleter = export_deleter;
  return py::capsule(&e->dl, "dltensor", capsule_destructor);
}

Array from_dlpack(const py::object& obj) {
  py::object cap = py::hasattr(obj, "__dlpack__") ? obj.attr("__dlpack__")() : obj;
  PyObject* c = cap.ptr();
  if (!PyCapsule_IsValid(c, "dltensor")) throw py::type_error("from_dlpack: expected a DLPack capsule or an object with __dlpack__");
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, "dltensor"));
  const DLTensor& t = m->dl_tensor;
  auto refuse = [&](const std::string& why) { throw py::type_error("from_dlpack: " + why); };
  if (t.device.device_type != kDLCUDA) refuse("the tensor is not in CUDA device memory (device type " + std::to_string(t.device.device_type) + ")");
  DType dt;
  if (t.dtype.code == kDLFloat && t.dtype.bits == 32 && t.dtype.lanes == 1) dt = DType::f32;
  else if (t.dtype.code == kDLInt && t.dtype.bits == 32 && t.dtype.lanes == 1) dt = DType::i32;
  else refuse("only float32 and int32 tensors are accepted");
  Shape shape(t.shape, t.shape + t.ndim);
  if (t.strides) {
    const Shape want = c_strides(shape);
    for (int i = 0; i < t.ndim; ++i)
      if (shape[size_t(i)] > 1 && t.strides[i] != want[size_t(i)]) refuse("the tensor is not C-contiguous");
  }
  if (t.byte_offset % 4) refuse("misaligned byte_offset");
  Array a;
  a.block = std::make_shared<Block>();
  a.block->ptr = static_cast<char*>(t.data) + t.byte_offset;
  a.block->device = t.device.device_id;
  a.block->foreign = m;
  a.block->foreign_deleter = [](void* p) {
    auto* mt = static_cast<DLManagedTensor*>(p);
    if (mt->deleter) mt->deleter(mt);
  };
  a.shape = shape;
  a.dtype = dt;
  PyCapsule_SetName(c, "used_dltensor");  // consumed: the producer's deleter now runs with our Block
  return a;
}

Array reshape(const Array& a, const Shape& want) {
  Shape s = want;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1 && infer < 0) infer = int64_t(i);
    else known *= s[i];
  }
  if (infer >= 0 && known > 0) s[size_t(infer)] = a.size() / known;
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  if (n != a.size()) throw std::invalid_argument("reshape: cannot reshape " + shape_str(a.shape) + " into " + shape_str(want));
  Array r = a;
  r.shape = s;
  return r;
}
}  // namespace

Block::~Block() {
  if (foreign_deleter) foreign_deleter(foreign);
  else device_free(device, ptr, bytes, pool);
}

const char* dtype_name(DType d) { return d == DType::f32 ? "float32" : "int32"; }

int64_t Array::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Array Array::empty(const Shape& shape, DType dt, int device) {
  Array a;
  a.shape = shape;
  a.dtype = dt;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("empty: negative dimension in " + shape_str(shape));
    if (d && n > (int64_t(1) << 40) / d) throw std::invalid_argument("empty: shape " + shape_str(shape) + " is too large");
    n *= d;
  }
  a.block = std::make_shared<Block>();
  a.block->device = device;
  a.block->bytes = size_t(n) * dtype_size(dt);
  a.block->ptr = device_alloc(device, a.block->bytes, &a.block->pool);
  return a;
}

Array& as_dev(const py::handle& h, const std::string& what, DType want) {
  if (!py::isinstance<Array>(h)) {
    const std::string got = py::str(py::type::handle_of(h).attr("__name__"));
    throw py::type_error(what + ": expected a fastnn CUDA array, got " + got +
                         " (host and device data do not mix: move it with Tensor.to('cuda') or _cuda.to_device)");
  }
  Array& a = h.cast<Array&>();
  if (a.dtype != want)
    throw py::type_error(what + ": expected " + dtype_name(want) + ", got " + dtype_name(a.dtype));
  return a;
}

Array out_or_new(const py::object& out, const Shape& shape, const std::string& name, const Array& like) {
  if (out.is_none()) return Array::empty(shape, DType::f32, like.device());
  Array& o = as_dev(out, name + ": out");
  if (o.shape != shape)
    throw std::invalid_argument(name + ": out has shape " + shape_str(o.shape) + ", expected " + shape_str(shape));
  check_same_device(o, like, name + ": out");
  return o;
}

void check_disjoint(const Array& out, const Array& in, const std::string& op, const char* in_name, bool exact_ok) {
  if (!out.block || !in.block || out.size() == 0 || in.size() == 0 || out.block->ptr != in.block->ptr) return;
  const int64_t a0 = out.offset, a1 = out.offset + out.size(), b0 = in.offset, b1 = in.offset + in.size();
  if (a1 <= b0 || b1 <= a0) return;
  if (exact_ok && a0 == b0 && a1 == b1) return;
  throw std::invalid_argument(op + ": out overlaps " + in_name);
}

void check_same_device(const Array& a, const Array& b, const std::string& what) {
  if (a.device() != b.device())
    throw std::invalid_argument(what + " is on cuda:" + std::to_string(a.device()) + ", the other operands on cuda:" +
                                std::to_string(b.device()));
}

void use_device(const Array& a) { check(cudaSetDevice(a.device()), "cudaSetDevice"); }

void bind_array(py::module_& m) {
  py::class_<Array>(m, "Array", "A dense float32/int32 array in CUDA device memory (fastnn's device array).")
      .def_property_readonly("shape", [](const Array& a) { return py::tuple(py::cast(a.shape)); })
      .def_property_readonly("ndim", [](const Array& a) { return a.shape.size(); })
      .def_property_readonly("size", &Array::size)
      .def_property_readonly("nbytes", [](const Array& a) { return a.size() * 4; })
      .def_property_readonly("dtype", [](const Array& a) { return py::dtype(dtype_name(a.dtype)); })
      .def_property_readonly("strides", [](const Array& a) {
        Shape s = c_strides(a.shape);
        for (auto& v : s) v *= 4;
        return py::tuple(py::cast(s));
      }, "Byte strides (always C-contiguous).")
      .def_property_readonly("device", [](const Array& a) { return "cuda:" + std::to_string(a.device()); })
      .def_property_readonly("data_ptr", [](const Array& a) { return reinterpret_cast<uintptr_t>(a.f32()); })
      .def("__len__", [](const Array& a) {
        if (a.shape.empty()) throw py::type_error("len() of a 0-d array");
        return a.shape[0];
      })
      .def("numpy", &to_host, "A host copy as a numpy array.")
      .def("reshape", [](const Array& a, py::args s) {
        Shape want;
        if (s.size() == 1 && !py::isinstance<py::int_>(s[0])) want = s[0].cast<Shape>();
        else for (auto h : s) want.push_back(h.cast<int64_t>());
        return reshape(a, want);
      })
      .def("__dlpack__", &dlpack, py::kw_only(), py::arg("stream") = py::none())
      .def("__dlpack_device__", [](const Array& a) { return py::make_tuple(kDLCUDA, a.device()); })
      .def("__array__", [](const Array&, py::args, py::kwargs) -> py::object {
        throw py::type_error("a fastnn CUDA array does not convert to numpy implicitly: use .numpy() or Tensor.to('cpu')");
      })
      .def("__repr__", [](const Array& a) {
        return "fastnn._cuda.Array(shape=" + shape_str(a.shape) + ", dtype=" + dtype_name(a.dtype) + ", device='cuda:" +
               std::to_string(a.device()) + "')";
      });
  m.def("to_device", &to_device, py::arg("array"), py::arg("device") = "cuda:0",
        "Copy a host array (float -> float32, integers -> int32) to a CUDA device.");
  m.def("to_host", &to_host, py::arg("array"), "Copy a device array to a new numpy array.");
  m.def("from_dlpack", &from_dlpack, py::arg("tensor"),
        "Wrap a CUDA tensor from another library (torch, cupy, jax) without copying.");
  auto shape_arg = [](const py::object& s) {
    return py::isinstance<py::int_>(s) ? Shape{s.cast<int64_t>()} : s.cast<Shape>();
  };
  m.def("empty", [shape_arg](const py::object& s, const py::object& device) {
    return Array::empty(shape_arg(s), DType::f32, parse_device(device));
  }, py::arg("shape"), py::arg("device") = "cuda:0", "Uninitialised float32 device array.");
  m.def("zeros", [shape_arg](const py::object& s, const py::object& device) {
    Array a = Array::empty(shape_arg(s), DType::f32, parse_device(device));
    use_device(a);
    check(cudaMemsetAsync(a.f32(), 0, size_t(a.size()) * 4, launch_stream()), "cudaMemset");
    return a;
  }, py::arg("shape"), py::arg("device") = "cuda:0", "Zero-filled float32 device array.");
  m.def("device_count", &device_count, "CUDA devices usable now (0 without a driver or GPU).");
  m.def("memory_allocated", &memory_allocated, "Bytes held by live fastnn device arrays.");
  m.def("memory_reserved", &memory_reserved, "Bytes held by fastnn from the driver (live + cached).");
  m.def("empty_cache", &empty_cache, "Return every cached free block to the driver.");
  m.def("synchronize", []() {
    py::gil_scoped_release nogil;
    check(cudaDeviceSynchronize(), "synchronize");
  }, "Wait for every queued kernel.");
  m.def("runtime_version", []() {
    int v = 0;
    cudaRuntimeGetVersion(&v);
    return v;
  }, "The CUDA runtime fastnn was built against (e.g. 13000).");
}
}  // namespace cuda
}  // namespace fastnn
