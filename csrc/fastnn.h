// fastnn core header: size type, boundary checks, and the KernelTable (the op set).
//
// Every backend (ref, each CPU ISA, later cuda) fills one KernelTable. Ops are grouped, one header
// per group under ops/, so each group's kernels, references and bindings live in their own files.
//
// Kernels: outputs first (after an op selector), then inputs, then sizes/params; arrays are float32
// and dense unless an op says otherwise. Forward kernels write their outputs. Backward kernels WRITE
// (overwrite) d<input>, never add into it, so callers allocate gradients uninitialised; the Python
// autograd accumulates gradients that meet. (Optimizer updates are not backward kernels: they update
// parameters and slots in place.)
//
// NOTE (ODR trap): csrc/cpu/ is compiled once per ISA with different -m flags into one .so. Any
// out-of-line function with external linkage that is emitted in more than one ISA (an inline function
// or template outside namespace fastnn::CPU_CAPABILITY, std::vector<T> members, ...) may be merged by the
// linker into the AVX-512 copy and then crash a machine without AVX-512. So ISA code keeps its helpers
// inside fastnn::CPU_CAPABILITY (or `static`), uses raw pointers and fastnn::scratch() for memory, and
// leaves std containers to non-ISA files (bindings, dispatch).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fastnn {
using index_t = int64_t;

// Raised at the boundary (bindings, drivers); pybind11 turns std::invalid_argument into ValueError.
#define FASTNN_CHECK(cond, msg)                                   \
  do {                                                            \
    if (!(cond)) throw std::invalid_argument(std::string(msg));   \
  } while (0)

// Per-thread, per-slot scratch buffer, 64-byte aligned, that only grows (so kernels can call it on
// every invocation and allocate only the first time). Slots let one kernel hold several buffers.
// Defined in dispatch.cpp (a non-ISA file): see the ODR note above.
constexpr int kScratchSlots = 8;
float* scratch(int slot, size_t nfloats);
}  // namespace fastnn

#include "ops/gemm.h"
#include "ops/conv.h"
#include "ops/eltwise.h"
#include "ops/optim.h"
#include "ops/rnn.h"
#include "ops/resample.h"
#include "ops/vision.h"

namespace fastnn {
struct KernelTable {
  const char* name;  // "ref", "default", "avx2", "avx512"
  GemmOps gemm;
  ConvOps conv;
  EltOps elt;
  OptimOps optim;
  RnnOps rnn;
  ImageOps image;
  VisionOps vision;
};

// dispatch.cpp
const KernelTable* ref_table();
const KernelTable* isa_table(const std::string& name);   // nullptr if unknown or unsupported here
const char* best_isa();         // highest ISA that cpuid + the OS allow
const char* active_isa();       // best_isa() unless FASTNN_CPU_CAPABILITY forces a lower one
bool isa_supported(const std::string& name);

// Each backend's fillers, one per kernel file, each setting its own entries of a group; defined
// next to the kernels and all called from the backend's table.cpp.
#define FASTNN_DECLARE_FILLERS      \
  void fill_gemm(GemmOps& t);       \
  void fill_conv(ConvOps& t);       \
  void fill_pool(ConvOps& t);       \
  void fill_unary(EltOps& t);       \
  void fill_softmax(EltOps& t);     \
  void fill_loss(EltOps& t);        \
  void fill_dropout(EltOps& t);     \
  void fill_optim(OptimOps& t);     \
  void fill_rnn(RnnOps& t);         \
  void fill_embedding(RnnOps& t);   \
  void fill_resample(ImageOps& t);  \
  void fill_depthwise(VisionOps& t); \
  void fill_batchnorm(VisionOps& t); \
  void fill_layernorm(VisionOps& t); \
  KernelTable make_table();

namespace ref { FASTNN_DECLARE_FILLERS }
namespace DEFAULT { FASTNN_DECLARE_FILLERS }
namespace AVX2 { FASTNN_DECLARE_FILLERS }
namespace AVX512 { FASTNN_DECLARE_FILLERS }
}  // namespace fastnn
