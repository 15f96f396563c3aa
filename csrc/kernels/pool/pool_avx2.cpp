// AVX2 row functions of the pooling kernels (8 x 32-bit, 16 x 16-bit lanes): pool_simd.inc on
// vec_avx2.h.
#include <cstring>

#include "kernels/pool/pool.h"
#include "kernels/pool/pool_arith.h"

#if NPUEMU_X86
#include "kernels/simd/vec_avx2.h"

namespace npuemu {
namespace pool_avx2 {
using namespace simd256;
#define NPUEMU_KTARGET NPUEMU_TARGET_AVX2
#include "kernels/pool/pool_simd.inc"
#undef NPUEMU_KTARGET
}  // namespace pool_avx2

const PoolRowTable* pool_rows_avx2() {
  static const PoolRowTable t = pool_avx2::make_pool_table();
  return &t;
}
}  // namespace npuemu

#else
namespace npuemu {
const PoolRowTable* pool_rows_avx2() { return nullptr; }
}  // namespace npuemu
#endif
