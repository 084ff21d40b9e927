#include <omp.h>

#include <algorithm>

#include "backward.h"
#include "blas.h"

namespace convbp {

#define CONVBP_IMPL(family) std::vector<std::unique_ptr<Backward>> make_##family##_backwards();
#include "impl_list.inc"
#undef CONVBP_IMPL

const char* to_string(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

const std::vector<const Backward*>& registry() {
  // Implementations are stateless and live for the whole program.
  static const std::vector<const Backward*> all = [] {
    std::vector<const Backward*> list;
#define CONVBP_IMPL(family) \
  for (auto& backward : make_##family##_backwards()) list.push_back(backward.release());
#include "impl_list.inc"
#undef CONVBP_IMPL
    return list;
  }();
  return all;
}

const Backward* find_backward(const std::string& name) {
  const auto& all = registry();
  auto it = std::find_if(all.begin(), all.end(), [&](auto* b) { return b->name() == name; });
  return it == all.end() ? nullptr : *it;
}

namespace {
int g_threads = 0;
}

void set_threads(int threads) {
  if (threads <= 0) threads = omp_get_num_procs();
  g_threads = threads;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int threads() { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

}  // namespace convbp
