// gemm on device arrays (arguments of csrc/bind/gemm.cpp) through one of two backends:
//   "tiled":  our kernel (gemm.cu), any strides, fp32 FMA;
//   "cublas": cuBLAS's SGEMM, loaded at run time with dlopen (never linked: a missing libcublas must not break
//             `import fastnn`). fastnn/_cuda_setup.py finds the library of the nvidia-cublas wheel (the `cuda`
//             extra) or the system's and calls load_cublas(path).
// "auto" (the default) is cuBLAS when loaded, else tiled. Math is fp32: TF32 tensor cores only after
// set_allow_tf32(True) (as tf.config.experimental.enable_tensor_float_32_execution), cuBLAS only.
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace fastnn {
namespace cuda {
namespace {
// The cuBLAS v2 entry points used (cublas_api.h): handles are opaque, enums are ints.
using Handle = void*;
using CreateFn = int (*)(Handle*);
using SetMathModeFn = int (*)(Handle, int);
using SetStreamFn = int (*)(Handle, cudaStream_t);
using SgemmFn = int (*)(Handle, int, int, int, int, int, const float*, const float*, int, const float*, int,
                        const float*, float*, int);
constexpr int kOpN = 0, kOpT = 1, kDefaultMath = 0, kTf32Math = 3;
constexpr int kMaxDevices = 64;

struct Cublas {
  void* lib = nullptr;
  std::string path;
  CreateFn create = nullptr;
  SetMathModeFn set_math = nullptr;
  SetStreamFn set_stream = nullptr;
  SgemmFn sgemm = nullptr;
  Handle handles[kMaxDevices] = {};
} cublas;
std::mutex cublas_mu;
std::string backend = "auto";
bool allow_tf32 = false;

bool load(const std::string& path) {
  std::lock_guard<std::mutex> lock(cublas_mu);
  if (cublas.lib) return true;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) return false;
  cublas.create = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
  cublas.set_math = reinterpret_cast<SetMathModeFn>(dlsym(lib, "cublasSetMathMode"));
  cublas.sgemm = reinterpret_cast<SgemmFn>(dlsym(lib, "cublasSgemm_v2"));
  cublas.set_stream = reinterpret_cast<SetStreamFn>(dlsym(lib, "cublasSetStream_v2"));
  if (!cublas.create || !cublas.set_math || !cublas.sgemm || !cublas.set_stream) {
    dlclose(lib);
    return false;
  }
  cublas.lib = lib;
  cublas.path = path;
  return true;
}

Handle handle_for(int device) {
  std::lock_guard<std::mutex> lock(cublas_mu);
  FASTNN_CHECK(device >= 0 && device < kMaxDevices, "gemm: device index out of range");
  Handle& h = cublas.handles[device];
  if (!h && cublas.create(&h) != 0) throw std::runtime_error("gemm: cublasCreate failed");
  cublas.set_math(h, allow_tf32 ? kTf32Math : kDefaultMath);
  cublas.set_stream(h, launch_stream());
  return h;
}

// One operand of the column-major product C^T = op(B)^T op(A)^T (row-major C = op(A) op(B), see ops/gemm.h):
// a rows x cols column-major view of the element (r, c) = X[r * rs + c * cs] with unit stride on one side.
struct ColOp {
  int op, ld;
  bool ok;
};
ColOp col_operand(int64_t rows, int64_t cols, int64_t rs_row, int64_t cs_col) {
  // element (r, c) of the wanted column-major matrix is at r * rs_row + c * cs_col
  auto fits = [](int64_t v) { return v > 0 && v <= 0x7fffffff; };
  if (rs_row == 1 && fits(cs_col) && cs_col >= rows) return {kOpN, int(cs_col), true};
  if (cs_col == 1 && fits(rs_row) && rs_row >= cols) return {kOpT, int(rs_row), true};
  if (rows == 1 && cs_col == 1) return {kOpN, 1, true};
  if (cols == 1 && rs_row == 1) return {kOpN, int(rows > 0 ? rows : 1), true};
  return {0, 0, false};
}

bool gemm_cublas(const GemmParams& p, int device) {
  auto fits = [](int64_t v) { return v >= 0 && v <= 0x7fffffff; };
  if (!fits(p.M) || !fits(p.N) || !fits(p.K) || !fits(p.ldc) || p.ldc < p.N) return false;
  // first operand op(B)^T (N x K): (j, k) = B[k * rsb + j * csb]; second op(A)^T (K x M): (k, i) = A[i * rsa + k * csa]
  const ColOp b = col_operand(p.N, p.K, p.csb, p.rsb), a = col_operand(p.K, p.M, p.csa, p.rsa);
  if (!a.ok || !b.ok) return false;
  const float alpha = p.alpha, beta = p.beta;
  const int st = cublas.sgemm(handle_for(device), b.op, a.op, int(p.N), int(p.M), int(p.K), &alpha, p.B, b.ld, p.A,
                              a.ld, &beta, p.C, int(p.ldc));
  if (st != 0) throw std::runtime_error("gemm: cublasSgemm failed with status " + std::to_string(st));
  bias_act(p.C, p.M, p.N, p.ldc, p.bias, p.act);
  return true;
}

}  // namespace

void gemm_run(const GemmParams& p, int device) {
  const bool want_cublas = backend == "cublas" || (backend == "auto" && cublas.lib);
  if (want_cublas && cublas.lib && gemm_cublas(p, device)) return;
  gemm_tiled(p);
}

void bind_gemm(py::module_& m) {
  m.def("gemm", [](const py::object& a_in, const py::object& b_in, const py::object& c_in, bool trans_a, bool trans_b,
                   float alpha, float beta, const py::object& bias_in, const std::string& activation,
                   const py::object& out) {
    Array& a = as_dev(a_in, "gemm: a");
    Array& b = as_dev(b_in, "gemm: b");
    check_same_device(b, a, "gemm: b");
    use_device(a);
    const GemmDims d = resolve_gemm(a.shape, b.shape, trans_a, trans_b, activation);
    Array c = out_or_new(out, {d.M, d.N}, "gemm", a);
    if (beta != 0.0f) {
      check_gemm_beta(beta, !c_in.is_none());
      Array& cc = as_dev(c_in, "gemm: c");
      check_gemm_c(cc.shape, d);
      if (cc.f32() != c.f32())
        check(cudaMemcpyAsync(c.f32(), cc.f32(), size_t(c.size()) * 4, cudaMemcpyDeviceToDevice, launch_stream()), "gemm: copy c");
    }
    const float* bias = nullptr;
    if (!bias_in.is_none()) {
      Array& bs = as_dev(bias_in, "gemm: bias");
      check_gemm_bias(bs.shape, d);
      check_disjoint(c, bs, "gemm", "bias");
      bias = bs.f32();
    }
    check_disjoint(c, a, "gemm", "a");
    check_disjoint(c, b, "gemm", "b");
    // a (rows, cols) row-major: op(A)(i, k) = A[i * cols + k], or A[k * cols + i] when transposed
    const int64_t ac = a.shape[1], bc = b.shape[1];
    GemmParams p{};
    p.M = d.M; p.N = d.N; p.K = d.K; p.alpha = alpha; p.beta = beta;
    p.A = a.f32(); p.rsa = trans_a ? 1 : ac; p.csa = trans_a ? ac : 1;
    p.B = b.f32(); p.rsb = trans_b ? 1 : bc; p.csb = trans_b ? bc : 1;
    p.C = c.f32(); p.ldc = d.N;
    p.bias = bias;
    p.act = activation == "relu" ? kActRelu : kActNone;
    if (d.M > 0 && d.N > 0) gemm_run(p, a.device());
    check(cudaGetLastError(), "gemm");
    return c;
  }, py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("trans_a") = false, py::arg("trans_b") = false,
     py::arg("alpha") = 1.0f, py::arg("beta") = 0.0f, py::arg("bias") = py::none(), py::arg("activation") = "none",
     py::arg("out") = py::none(), "alpha*op(a)@op(b) + beta*c (+bias per column, then activation) as float32 (M, N).");
  m.def("load_cublas", [](const std::string& path) { return load(path); }, py::arg("path"),
        "dlopen cuBLAS from path (a file or a soname); True when loaded (now or before).");
  m.def("cublas_path", []() { return cublas.lib ? py::object(py::str(cublas.path)) : py::object(py::none()); });
  m.def("set_gemm_backend", [](const std::string& name) {
    FASTNN_CHECK(name == "auto" || name == "tiled" || name == "cublas",
                 "set_gemm_backend: expected 'auto', 'tiled' or 'cublas', got '" + name + "'");
    if (name == "cublas" && !cublas.lib)
      throw std::runtime_error("set_gemm_backend: cuBLAS is not loaded (pip install fastnn[cuda], or load_cublas(path))");
    backend = name;
  }, py::arg("name"));
  m.def("gemm_backend", []() { return backend == "auto" ? std::string(cublas.lib ? "cublas" : "tiled") : backend; });
  m.def("set_allow_tf32", [](bool allow) { allow_tf32 = allow; }, py::arg("allow"),
        "Let cuBLAS use TF32 tensor cores for float32 GEMM (off by default, as Keras/TF).");
  m.def("allow_tf32", []() { return allow_tf32; });
}
}  // namespace cuda
}  // namespace fastnn
