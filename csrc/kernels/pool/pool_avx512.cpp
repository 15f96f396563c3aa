// AVX-512 row functions of the pooling kernels (16 x 32-bit, 32 x 16-bit lanes): pool_simd.inc on
// vec_avx512.h.
#include <cstring>

#include "kernels/pool/pool.h"
#include "kernels/pool/pool_arith.h"

#if NPUEMU_X86
#include "kernels/simd/vec_avx512.h"

namespace npuemu {
namespace pool_avx512 {
using namespace simd512;
#define NPUEMU_KTARGET NPUEMU_TARGET_AVX512
#include "kernels/pool/pool_simd.inc"
#undef NPUEMU_KTARGET
}  // namespace pool_avx512

const PoolRowTable* pool_rows_avx512() {
  static const PoolRowTable t = pool_avx512::make_pool_table();
  return &t;
}
}  // namespace npuemu

#else
namespace npuemu {
const PoolRowTable* pool_rows_avx512() { return nullptr; }
}  // namespace npuemu
#endif
