// Measured peak of the CPU's multiply-accumulate instructions, the yardstick the benchmarks report
// kernels against. Each probe runs independent accumulator chains of one instruction in inline asm
// (no loads, no dependencies between chains) for a fixed count, on the calling thread.
#include <chrono>
#include <string>

#include "core/check.h"
#include "core/cpu.h"

namespace npuemu {
namespace {

#if NPUEMU_X86
#define NPUEMU_PEAK_BODY(INS)                                                                                     \
  __asm__ volatile("vpxord %%xmm14, %%xmm14, %%xmm14\n vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n"                     \
                   "1:\n" INS(0) INS(1) INS(2) INS(3) INS(4) INS(5) INS(6) INS(7) INS(8) INS(9) INS(10) INS(11)  \
                   "dec %0\n jnz 1b\n"                                                                           \
                   : "+r"(n)                                                                                     \
                   :                                                                                             \
                   : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",   \
                     "xmm10", "xmm11", "xmm14", "xmm15")
#define VPDPBUSD_Z(i) "vpdpbusd %%zmm14, %%zmm15, %%zmm" #i "\n"
#define VPMADDWD_Y(i) "vpmaddwd %%ymm14, %%ymm15, %%ymm" #i "\n"
#define VFMADD_Y(i) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #i "\n"

NPUEMU_TARGET_AVX512 void loop_vpdpbusd(long n) { NPUEMU_PEAK_BODY(VPDPBUSD_Z); }
NPUEMU_TARGET_AVX2 void loop_vpmaddwd(long n) { NPUEMU_PEAK_BODY(VPMADDWD_Y); }
NPUEMU_TARGET_AVX2 void loop_vfmadd(long n) { NPUEMU_PEAK_BODY(VFMADD_Y); }
#endif

template <class F>
double rate(F f, double ops_per_iter) {
  const long n = 2000000;
  f(n / 10);  // warm-up (clock ramp)
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f(n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double v = ops_per_iter * static_cast<double>(n) / s / 1e9;
    best = v > best ? v : best;
  }
  return best;
}

}  // namespace

// GMAC/s of one core: "int8" = the best int8 dot-product instruction of this CPU (vpdpbusd zmm: 64 MACs;
// AVX2 has no exact 8-bit dot product, its int8 kernels use vpmaddwd ymm: 16 MACs), "fp32" = FMA.
double measure_peak_gmacs(const std::string& what) {
#if NPUEMU_X86
  if (what == "int8") {
    if (active_isa() >= Isa::kAvx512Vnni) return rate(loop_vpdpbusd, 12 * 64);
    if (active_isa() >= Isa::kAvx2) return rate(loop_vpmaddwd, 12 * 16);
    return 0.0;
  }
  if (what == "fp32") return active_isa() >= Isa::kAvx2 ? rate(loop_vfmadd, 12 * 8) : 0.0;
#endif
  NPU_CHECK(what == "int8" || what == "fp32", "peak: 'int8' or 'fp32', got '", what, "'");
  return 0.0;
}

}  // namespace npuemu
