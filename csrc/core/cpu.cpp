#include "core/cpu.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#if NPUEMU_X86
#include <cpuid.h>
#endif

namespace npuemu {
namespace {

#if NPUEMU_X86
unsigned long long xgetbv0() {
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
#endif

Isa detect() {
#if NPUEMU_X86
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::kScalar;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29), avx = c & (1u << 28);
  if (!(osxsave && avx && fma && f16c)) return Isa::kScalar;
  const unsigned long long xcr0 = xgetbv0();
  if ((xcr0 & 0x6) != 0x6) return Isa::kScalar;  // OS saves XMM and YMM state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::kScalar;
  const bool avx2 = b & (1u << 5);
  if (!avx2) return Isa::kScalar;
  const bool f512 = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
  const bool vnni = c & (1u << 11);
  const bool os512 = (xcr0 & 0xe6) == 0xe6;  // opmask, ZMM_Hi256, Hi16_ZMM state
  if (f512 && dq && bw && vl && vnni && os512) return Isa::kAvx512Vnni;
  return Isa::kAvx2;
#else
  return Isa::kScalar;
#endif
}

Isa initial_cap() {
  const char* env = std::getenv("NPUEMU_ISA");
  if (env == nullptr || *env == '\0') return Isa::kAvx512Vnni;
  try {
    return parse_isa(env);
  } catch (const std::invalid_argument&) {
    return Isa::kAvx512Vnni;  // an invalid value is reported by npuemu.isa_info(); never abort import
  }
}

std::atomic<int>& cap_storage() {
  static std::atomic<int> cap{static_cast<int>(initial_cap())};
  return cap;
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa isa_cap() { return static_cast<Isa>(cap_storage().load()); }

Isa active_isa() {
  const int d = static_cast<int>(detected_isa()), c = cap_storage().load();
  return static_cast<Isa>(d < c ? d : c);
}

void set_isa_cap(Isa cap) { cap_storage().store(static_cast<int>(cap)); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512Vnni: return "avx512vnni";
  }
  return "?";
}

Isa parse_isa(const std::string& name) {
  if (name == "scalar") return Isa::kScalar;
  if (name == "avx2") return Isa::kAvx2;
  if (name == "avx512vnni" || name == "avx512") return Isa::kAvx512Vnni;
  throw std::invalid_argument("unknown ISA '" + name + "'; valid choices: scalar, avx2, avx512vnni");
}

}  // namespace npuemu
