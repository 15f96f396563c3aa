// Kernel selection shared by the op layers (convolution, element-wise, pooling): every kernel family has
// a registry of objects with name() and isa().
#pragma once
#include <string>
#include <vector>

#include "core/check.h"
#include "core/cpu.h"

namespace npuemu {

// The kernel's name without its ISA suffix: the variants of one kernel for different ISAs share it.
template <class K>
std::string kernel_stem(const K* k) {
  const std::string n = k->name(), suffix = std::string("_") + isa_name(k->isa());
  return n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0
             ? n.substr(0, n.size() - suffix.size())
             : n;
}

// Among candidates, drops every kernel that a higher-ISA variant of itself supersedes: lower-ISA variants
// exist for CPUs without the higher ISA, so where both run only the highest stays, whatever a cost model
// says.
template <class K>
void keep_highest_isa(std::vector<const K*>& ks) {
  std::vector<const K*> best;
  for (const K* k : ks) {
    bool superseded = false;
    for (const K* o : ks)
      if (o != k && static_cast<int>(o->isa()) > static_cast<int>(k->isa()) && kernel_stem(o) == kernel_stem(k))
        superseded = true;
    if (!superseded) best.push_back(k);
  }
  ks.swap(best);
}

// A kernel forced by name: it must be registered and run under the active ISA (throws naming the choices).
template <class K>
const K* find_forced_kernel(const std::vector<const K*>& registry, const std::string& name, const char* what) {
  const K* found = nullptr;
  std::string names;
  for (const K* k : registry) {
    names += (names.empty() ? "" : ", ") + k->name();
    if (k->name() == name) found = k;
  }
  NPU_CHECK(found != nullptr, "unknown kernel '", name, "'; registered ", what, " kernels: ", names);
  NPU_CHECK(static_cast<int>(found->isa()) <= static_cast<int>(active_isa()), "kernel '", name, "' needs ISA ",
            isa_name(found->isa()), " but the active ISA is ", isa_name(active_isa()));
  return found;
}

}  // namespace npuemu
