// AVX-512 row functions of the element-wise ops (16 lanes): eltwise_simd.inc on vec_avx512.h.
#include <cstring>
#include <type_traits>

#include "kernels/eltwise/eltwise.h"
#include "quant/fp16.h"

#if NPUEMU_X86
#include "kernels/simd/vec_avx512.h"

namespace npuemu {
namespace eltwise_avx512 {
using namespace simd512;
#define NPUEMU_KTARGET NPUEMU_TARGET_AVX512
#include "kernels/eltwise/eltwise_simd.inc"
#undef NPUEMU_KTARGET
}  // namespace eltwise_avx512

const EltRowTable* eltwise_rows_avx512() {
  static const EltRowTable t = eltwise_avx512::make_eltwise_table();
  return &t;
}
}  // namespace npuemu

#else
namespace npuemu {
const EltRowTable* eltwise_rows_avx512() { return nullptr; }
}  // namespace npuemu
#endif
