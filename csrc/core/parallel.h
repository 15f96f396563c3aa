// Multi-core dispatch: the emulated NPU's cores as a persistent pool of worker threads.
//
// A core mask selects the cores a call may use, with RKNN's values: 0 = auto (one core, as the vendor
// runtime schedules AUTO onto a single core), 1/2/4 = core 0/1/2, 3 = cores 0-1, 7 = cores 0-2,
// 0xffff = all cores. Any mask whose bits name existing cores is accepted.
//
// run(mask, n, fn) splits the index range [0, n) into one contiguous chunk per selected core (chunk i is
// [n*i/k, n*(i+1)/k)), so the split depends only on n and the number of cores. Every output element is
// computed by exactly one core with the same arithmetic, so results are bit-identical for every mask.
// The lowest selected core's chunk runs on the calling thread; with one core nothing is dispatched.
#pragma once
#include <cstdint>
#include <vector>

namespace npuemu {

constexpr uint32_t kCoreMaskAuto = 0;
constexpr uint32_t kCoreMaskAll = 0xffff;
constexpr int kMaxCores = 16;

// The set of cores one call uses (validated from a mask).
struct CoreSet {
  int count = 1;
  int ids[kMaxCores] = {0};
};

// A non-owning callable reference: fn(core_index_in_set, begin, end). Never allocates.
class ChunkFn {
 public:
  template <class F>
  ChunkFn(F& f)  // NOLINT: implicit on purpose
      : obj_(&f), call_([](void* o, int c, int64_t b, int64_t e) { (*static_cast<F*>(o))(c, b, e); }) {}
  void operator()(int c, int64_t b, int64_t e) const { call_(obj_, c, b, e); }

 private:
  void* obj_;
  void (*call_)(void*, int, int64_t, int64_t);
};

class CorePool {
 public:
  static CorePool& instance();
  int num_cores() const { return num_cores_; }
  // Sets the number of emulated cores (1..16). Joins and restarts the workers.
  void set_num_cores(int n);
  // Validates `mask` against the current core count; throws std::invalid_argument naming valid values.
  CoreSet cores_for_mask(uint32_t mask) const;
  // Runs fn over [0, n) split across `cores` (see the file comment). Blocks until all chunks finished.
  // Rethrows the first exception thrown by a chunk.
  void run(const CoreSet& cores, int64_t n, ChunkFn fn);
  // The chunk [begin, end) that position `i` of `k` gets for a range of n items.
  static void chunk(int64_t n, int i, int k, int64_t* begin, int64_t* end) {
    *begin = n * i / k;
    *end = n * (i + 1) / k;
  }
  ~CorePool();

 private:
  CorePool();
  struct Impl;
  Impl* impl_;
  int num_cores_ = 3;
};

}  // namespace npuemu
