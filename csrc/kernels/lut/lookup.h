// The DPU's lookup table, y[i] = table[bit pattern of x[i]], for 1- or 2-byte x, table and y.
#pragma once
#include <cstdint>

namespace npuemu {

// xs, ys: element sizes (1 or 2); table: 256 (xs == 1) or 65,536 (xs == 2) entries of ys bytes.
void lookup_table(const void* table, const void* x, int xs, void* y, int ys, int64_t n);

}  // namespace npuemu
