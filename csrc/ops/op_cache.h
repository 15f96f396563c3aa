// The functional API's cache of prepared operators: a small LRU list keyed by the active ISA (a different
// cap selects other kernels) and by an op-specific match of the defining arguments. A hit returns the
// shared operator without allocating; a miss builds one. Thread-safe; the returned shared_ptr keeps an
// operator alive while it runs even if it is evicted meanwhile.
#pragma once
#include <cstddef>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>

#include "core/cpu.h"

namespace npuemu {

// Bit equality of floats (the cache compares scales exactly; NaN never matches a number).
inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

template <class Op>
class OpCache {
 public:
  explicit OpCache(size_t capacity) : capacity_(capacity) {}

  // matches(const Op&) -> bool decides a hit; make() -> std::shared_ptr<Op> builds on a miss.
  template <class Matches, class Make>
  std::shared_ptr<Op> get(Matches matches, Make make) {
    std::lock_guard<std::mutex> lk(mu_);
    const Isa isa = active_isa();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->isa != isa || !matches(*it->op)) continue;
      if (it != entries_.begin()) entries_.splice(entries_.begin(), entries_, it);  // most recent first
      return entries_.front().op;
    }
    std::shared_ptr<Op> op = make();
    entries_.push_front(Entry{isa, op});
    if (entries_.size() > capacity_) entries_.pop_back();
    return op;
  }

  void clear() {
    std::lock_guard<std::mutex> lk(mu_);
    entries_.clear();
  }

 private:
  struct Entry {
    Isa isa;
    std::shared_ptr<Op> op;
  };
  std::mutex mu_;
  std::list<Entry> entries_;
  size_t capacity_;
};

}  // namespace npuemu
