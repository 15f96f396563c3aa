// AVX2 row functions of the element-wise ops (8 lanes): eltwise_simd.inc on vec_avx2.h.
#include <cstring>
#include <type_traits>

#include "kernels/eltwise/eltwise.h"
#include "quant/fp16.h"

#if NPUEMU_X86
#include "kernels/simd/vec_avx2.h"

namespace npuemu {
namespace eltwise_avx2 {
using namespace simd256;
#define NPUEMU_KTARGET NPUEMU_TARGET_AVX2
#include "kernels/eltwise/eltwise_simd.inc"
#undef NPUEMU_KTARGET
}  // namespace eltwise_avx2

const EltRowTable* eltwise_rows_avx2() {
  static const EltRowTable t = eltwise_avx2::make_eltwise_table();
  return &t;
}
}  // namespace npuemu

#else
namespace npuemu {
const EltRowTable* eltwise_rows_avx2() { return nullptr; }
}  // namespace npuemu
#endif
