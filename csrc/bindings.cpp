// PYBIND11_MODULE(_C): package-level functions, then one submodule per backend with identical op
// names (_C.ref, _C.default, _C.avx2, _C.avx512 where the CPU runs it), and _C.cpu = the active one.
#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>

#include "bind/common.h"
#include "pool.h"

#ifndef FASTNN_VERSION_INFO
#define FASTNN_VERSION_INFO "dev"
#endif

namespace fastnn {
void bind_vision(py::module_& m, const KernelTable* t);  // bind/vision.cpp

void bind_rnn(py::module_& m, const KernelTable* t);        // bind/rnn.cpp
void bind_embedding(py::module_& m, const KernelTable* t);  // bind/embedding.cpp
namespace {
void bind_table(py::module_& m, const KernelTable* t) {
  m.attr("name") = t->name;
  bind_gemm(m, t);
  bind_conv(m, t);
  bind_unary(m, t);
  bind_softmax(m, t);
  bind_loss(m, t);
  bind_dropout(m, t);
  bind_optim(m, t);
  bind_rnn(m, t);
  bind_embedding(m, t);
  bind_resample(m, t);
  bind_vision(m, t);
}

// Most threads set_num_threads accepts. Far more threads than cores only slows the kernels down, and
// libgomp aborts the process (not a Python error) when it cannot create a thread, e.g. when each
// thread's stack no longer fits an address-space limit: 100000 threads need ~800 GB of stacks.
int max_num_threads() { return std::max(64, 4 * omp_get_num_procs()); }

// True in a child made by fork(). libgomp's worker threads do not survive fork, and the child's first
// parallel region would wait for them forever; so the child runs its kernels on one thread (the kernels
// are serial when omp_get_max_threads() is 1), as PyTorch does.
bool forked_child = false;
void on_fork_child() {
  forked_child = true;
  omp_set_num_threads(1);
}
}  // namespace
}  // namespace fastnn

PYBIND11_MODULE(_C, m) {
  using namespace fastnn;
  m.doc() = "fastnn C++ kernels";
  py::module_ ref = m.def_submodule("ref", "naive reference kernels (test oracle)");
  bind_table(ref, ref_table());
  py::list isas;
  for (const char* isa : {"default", "avx2", "avx512"}) {
    if (!isa_supported(isa)) continue;
    isas.append(isa);
    py::module_ sub = m.def_submodule(isa, "kernels compiled for this ISA");
    bind_table(sub, isa_table(isa));
  }
  m.attr("supported_isas") = isas;
  m.attr("unary_ops") = unary_op_table();
  m.attr("best_isa") = best_isa();
  m.attr("active_isa") = active_isa();
  m.attr("cpu") = m.attr(active_isa());
  pthread_atfork(nullptr, nullptr, on_fork_child);
  m.def("set_num_threads", [](const py::int_& n_in) {
    // Compared as a Python int, so that values beyond int64 get the same ValueError
    const std::string got = py::str(n_in);
    FASTNN_CHECK(n_in >= py::int_(1), "set_num_threads: n must be >= 1, got " + got);
    FASTNN_CHECK(n_in <= py::int_(max_num_threads()), "set_num_threads: n must be <= " +
                                                          std::to_string(max_num_threads()) +
                                                          " (4 per core, at least 64), got " + got);
    const int n = n_in.cast<int>();
    FASTNN_CHECK(n == 1 || !forked_child,
                 "set_num_threads: this process was made by fork(), where the kernels run on 1 thread (OpenMP's "
                 "threads do not survive fork); use the 'spawn' or 'forkserver' start method for more");
    omp_set_num_threads(n);
  }, py::arg("n"));
  m.attr("max_num_threads") = max_num_threads();
  m.def("get_num_threads", []() { return omp_get_max_threads(); });
  // Test hook for the thread pool (tests/test_threads_neighbours.py): runs `chunks` chunks on a team of `team`,
  // each counting its own runs; chunk `throw_at` (if >= 0) throws after counting. Returns (the counts, the message
  // of the exception pool::run rethrew, or None).
  m.def("_pool_check", [](int team, int64_t chunks, int64_t throw_at) {
    FASTNN_CHECK(team >= 1 && chunks >= 0 && chunks < (int64_t(1) << 24), "_pool_check: bad arguments");
    std::unique_ptr<std::atomic<int>[]> runs(new std::atomic<int>[size_t(chunks)]);
    for (int64_t c = 0; c < chunks; ++c) runs[c] = 0;
    py::object error = py::none();
    std::string what;
    bool failed = false;
    {
      py::gil_scoped_release nogil;
      try {
        pool::run_chunks(team, chunks, [&](int64_t c) {
          runs[c].fetch_add(1);
          if (c == throw_at) throw std::runtime_error("chunk " + std::to_string(c) + " failed");
        });
      } catch (const std::exception& e) {
        failed = true, what = e.what();
      }
    }
    if (failed) error = py::str(what);
    py::list counts;
    for (int64_t c = 0; c < chunks; ++c) counts.append(runs[c].load());
    return py::make_tuple(counts, error);
  }, py::arg("team"), py::arg("chunks"), py::arg("throw_at") = -1);
  m.attr("compiler") = FASTNN_COMPILER;
  m.attr("openmp") = FASTNN_OPENMP;
}
