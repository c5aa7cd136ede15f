// CPU dispatch: cpuid (+ the OS's consent via XGETBV) picks the highest ISA table once, at import.
// FASTNN_CPU_CAPABILITY=avx2|default forces a lower table (so tests can cover every path); asking
// for a table the CPU cannot run falls back to the best supported one.
#include <cpuid.h>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "fastnn.h"

namespace fastnn {
namespace {

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

struct CpuFeatures {
  bool avx2 = false, avx512 = false;
  CpuFeatures() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const bool osxsave = c & bit_OSXSAVE, fma = c & bit_FMA, f16c = c & bit_F16C, avx = c & bit_AVX;
    if (!(osxsave && avx)) return;
    const uint64_t xcr0 = xgetbv0();
    const bool os_ymm = (xcr0 & 0x6) == 0x6;     // SSE + AVX state
    const bool os_zmm = (xcr0 & 0xe6) == 0xe6;   // + opmask, ZMM_Hi256, Hi16_ZMM
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    const bool has_avx2 = b & bit_AVX2, bmi2 = b & bit_BMI2;
    const bool f = b & bit_AVX512F, bw = b & bit_AVX512BW, dq = b & bit_AVX512DQ, vl = b & bit_AVX512VL;
    avx2 = os_ymm && has_avx2 && fma && f16c && bmi2;
    avx512 = avx2 && os_zmm && f && bw && dq && vl;
  }
};

const CpuFeatures& features() {
  static const CpuFeatures f;
  return f;
}

const char* choose_active() {
  const char* forced = std::getenv("FASTNN_CPU_CAPABILITY");
  if (forced && *forced)
    for (const char* n : {"default", "avx2", "avx512"})
      if (std::strcmp(forced, n) == 0 && isa_supported(n)) return n;
  return best_isa();
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
struct ScratchBuf {
  std::unique_ptr<float, AlignedFree> p;
  size_t cap = 0;
};
}  // namespace

bool isa_supported(const std::string& name) {
  if (name == "default") return true;
  if (name == "avx2") return features().avx2;
  if (name == "avx512") return features().avx512;
  return false;
}

const char* best_isa() { return features().avx512 ? "avx512" : features().avx2 ? "avx2" : "default"; }

const char* active_isa() {
  static const char* a = choose_active();
  return a;
}

const KernelTable* ref_table() {
  static const KernelTable t = ref::make_table();
  return &t;
}

const KernelTable* isa_table(const std::string& name) {
  if (!isa_supported(name)) return nullptr;
  if (name == "avx512") { static const KernelTable t = AVX512::make_table(); return &t; }
  if (name == "avx2") { static const KernelTable t = AVX2::make_table(); return &t; }
  static const KernelTable t = DEFAULT::make_table();
  return &t;
}

float* scratch(int slot, size_t nfloats) {
  FASTNN_CHECK(slot >= 0 && slot < kScratchSlots, "scratch slot out of range");
  thread_local ScratchBuf bufs[kScratchSlots];
  ScratchBuf& b = bufs[slot];
  if (nfloats > b.cap) {
    const size_t bytes = ((nfloats * sizeof(float) + 63) / 64) * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
    b.p.reset(p);
    b.cap = bytes / sizeof(float);
  }
  return b.p.get();
}
}  // namespace fastnn
