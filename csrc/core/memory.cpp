#include "core/memory.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace npuemu {
namespace {
std::atomic<uint64_t> g_count{0}, g_bytes{0}, g_live{0};
}

void* aligned_malloc(size_t bytes) {
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded ? rounded : kAlign);
  if (p == nullptr) throw std::bad_alloc();
  g_count.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(bytes, std::memory_order_relaxed);
  g_live.fetch_add(bytes, std::memory_order_relaxed);
  return p;
}

void aligned_free(void* p, size_t bytes) noexcept {
  if (p == nullptr) return;
  g_live.fetch_sub(bytes, std::memory_order_relaxed);
  std::free(p);
}

AllocStats alloc_stats() {
  return {g_count.load(), g_bytes.load(), g_live.load()};
}

Workspace& Workspace::local() {
  thread_local Workspace ws;
  return ws;
}

}  // namespace npuemu
