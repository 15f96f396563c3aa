// Every buffer the core allocates goes through aligned_malloc so that allocations can be counted: tests
// use alloc_stats() to show that steady-state calls allocate nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

namespace npuemu {

constexpr size_t kAlign = 64;  // one cache line; also the widest vector (zmm)

struct AllocStats {
  uint64_t count;  // number of allocations made so far
  uint64_t bytes;  // bytes allocated so far (never decreases)
  uint64_t live_bytes;
};

void* aligned_malloc(size_t bytes);  // throws std::bad_alloc
void aligned_free(void* p, size_t bytes) noexcept;
AllocStats alloc_stats();

// An owned, 64-byte aligned byte buffer.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes) : data_(bytes ? aligned_malloc(bytes) : nullptr), size_(bytes) {}
  ~Buffer() { aligned_free(data_, size_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      aligned_free(data_, size_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  template <class T = void>
  T* data() const { return static_cast<T*>(data_); }
  size_t size() const { return size_; }
  // Grows to at least `bytes` (contents are not preserved); never shrinks.
  void reserve(size_t bytes) {
    if (bytes > size_) *this = Buffer(bytes + bytes / 8);
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Grow-only scratch memory owned by one thread. Ops ask for numbered slots; a slot keeps its capacity
// between calls, so repeated calls with the same shapes allocate nothing.
class Workspace {
 public:
  static constexpr int kSlots = 8;
  template <class T>
  T* slot(int index, size_t count) {
    Buffer& b = slots_[index];
    b.reserve(count * sizeof(T));
    return b.data<T>();
  }
  // The calling thread's workspace.
  static Workspace& local();

 private:
  Buffer slots_[kSlots];
};

// Slot numbers, so that nested users never share one.
enum WorkspaceSlot : int {
  kSlotInput = 0,    // packed / padded input
  kSlotOutput = 1,   // blocked output before unpacking
  kSlotWeights = 2,  // weights packed per call (dynamic weights)
  kSlotTile = 3,     // per-core tile scratch (Winograd)
  kSlotTile2 = 4,
  kSlotMisc = 5,
};

}  // namespace npuemu
