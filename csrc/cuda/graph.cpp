// CUDA graphs: capture_begin() ... capture_end() records every kernel launched on fastnn's stream in between
// (a whole training step, once shapes are stable) and Graph.replay() relaunches them in one call.
// Arrays made during the capture keep their memory for the graph (allocator.cpp Pool): replays rewrite them in
// place, so a step's outputs (the loss, say) are read from the arrays the captured call returned.
// Rules while capturing: nothing may wait for the GPU (no to_device/to_host/numpy(), no point-loss value, no
// label check), and scalars are baked in: Adam's step count is a kernel argument, so a captured Adam step
// replays the same bias correction (use SGD/RMSprop/Adagrad/Adadelta, or capture once per step count).
#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace fastnn {
namespace cuda {
namespace {
struct Graph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::shared_ptr<Pool> pool;  // the graph's memory: released when the graph and its arrays are gone
  int device = 0;
  ~Graph() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
};

void capture_begin() {
  FASTNN_CHECK(!capture_pool(), "capture_begin: a capture is already under way");
  const cudaStream_t s = launch_stream();
  check(cudaStreamSynchronize(s), "capture_begin: sync");
  set_capture_pool(new_pool());
  const cudaError_t err = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
  if (err != cudaSuccess) {
    set_capture_pool(nullptr);
    check(err, "cudaStreamBeginCapture");
  }
}

std::shared_ptr<Graph> capture_end() {
  std::shared_ptr<Pool> pool = capture_pool();
  FASTNN_CHECK(pool, "capture_end: no capture under way (call capture_begin first)");
  auto g = std::make_shared<Graph>();
  const cudaError_t err = cudaStreamEndCapture(launch_stream(), &g->graph);
  set_capture_pool(nullptr);
  check(err, "capture_end (was a host copy or a sync made during the capture?)");
  g->pool = std::move(pool);
  check(cudaGetDevice(&g->device), "cudaGetDevice");
  check(cudaGraphInstantiate(&g->exec, g->graph, 0), "cudaGraphInstantiate");
  return g;
}
}  // namespace

void bind_graph(py::module_& m) {
  py::class_<Graph, std::shared_ptr<Graph>>(m, "Graph", "A captured sequence of fastnn kernels (capture_end()).")
      .def("replay", [](const Graph& g) {
        check(cudaSetDevice(g.device), "cudaSetDevice");
        check(cudaGraphLaunch(g.exec, launch_stream()), "cudaGraphLaunch");
      }, "Launch the captured kernels again (asynchronously, on fastnn's stream).");
  m.def("capture_begin", &capture_begin, "Start recording fastnn's kernel launches on the current device.");
  m.def("capture_end", &capture_end, "Stop recording; returns the Graph.");
  m.def("is_capturing", []() { return bool(capture_pool()); });
}
}  // namespace cuda
}  // namespace fastnn
