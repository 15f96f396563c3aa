// Run-time CPU feature detection and the ISA tier that kernels may use.
//
// Tiers are ordered: a kernel of tier T runs on any CPU whose tier is >= T.
//   scalar      portable C++ (any CPU; the baseline x86-64 build has SSE2 only)
//   avx2        AVX2 + FMA + F16C (Haswell, Zen 1 and later)
//   avx512vnni  AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Cascade Lake, Zen 4 and later)
// The active tier is min(detected, cap). The cap comes from the environment variable NPUEMU_ISA
// (scalar | avx2 | avx512vnni) read once at start-up, and can be changed with set_isa_cap().
#pragma once
#include <string>

namespace npuemu {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512Vnni = 2 };

Isa detected_isa();           // best tier this CPU and OS support
Isa active_isa();             // tier kernels are selected for
void set_isa_cap(Isa cap);    // lowers (or restores) the active tier; never above detected_isa()
Isa isa_cap();
const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);  // throws std::invalid_argument naming the valid choices

}  // namespace npuemu

// Function attributes that let one translation unit hold code for several ISAs. Only functions carrying
// them may use the matching intrinsics; everything else in the file stays baseline x86-64, so static
// initializers and STL instantiations never contain AVX-512 instructions.
#if defined(__x86_64__) || defined(_M_X64)
#define NPUEMU_X86 1
#define NPUEMU_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define NPUEMU_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#else
#define NPUEMU_X86 0
#define NPUEMU_TARGET_AVX2
#define NPUEMU_TARGET_AVX512
#endif
#define NPUEMU_INLINE inline __attribute__((always_inline))
