#include <omp.h>

#include <algorithm>
#include <stdexcept>

#include "backward.h"
#include "blas.h"

namespace convbp {

#define CONVBP_IMPL(family) std::vector<std::unique_ptr<Backward>> make_##family##_backwards();
#include "impl_list.inc"
#undef CONVBP_IMPL

const char* to_string(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

namespace {
std::vector<const Backward*>& mutable_registry() {
  // Implementations are stateless and live for the whole program. The list is never destroyed
  // either, so that they stay reachable to the end: a static vector's destructor, run at exit,
  // would leave them to LeakSanitizer as leaks.
  static auto* all = [] {
    auto* list = new std::vector<const Backward*>;
#define CONVBP_IMPL(family) \
  for (auto& backward : make_##family##_backwards()) list->push_back(backward.release());
#include "impl_list.inc"
#undef CONVBP_IMPL
    return list;
  }();
  return *all;
}
}  // namespace

const std::vector<const Backward*>& registry() { return mutable_registry(); }

const Backward* find_backward(const std::string& name) {
  const auto& all = registry();
  auto it = std::find_if(all.begin(), all.end(), [&](auto* b) { return b->name() == name; });
  if (it != all.end()) return *it;
  for (const Backward* b : all) {
    if (const Backward* m = b->member(name)) return m;
  }
  return nullptr;
}

void add_backward(std::unique_ptr<Backward> backward) {
  if (!backward) throw std::invalid_argument("add_backward: null implementation");
  if (find_backward(backward->name())) {
    throw std::invalid_argument("add_backward: an implementation named \"" + backward->name() +
                                "\" is already registered");
  }
  mutable_registry().push_back(backward.release());
}

void Backward::run_reference(const ConvProblem&, Pass, const Tensors&, double*, double*,
                             double*) const {
  throw std::logic_error(name() + " is not the reference (Roles::reference)");
}

const Backward& reference_backward() {
  for (const Backward* b : registry()) {
    if (b->roles().reference) return *b;
  }
  throw std::logic_error("no registered implementation is the reference (Roles::reference)");
}

std::vector<const Backward*> baselines() {
  std::vector<const Backward*> out;
  for (const Backward* b : registry()) {
    if (b->roles().baseline) out.push_back(b);
  }
  return out;
}

std::vector<std::string> default_fallbacks() {
  std::vector<std::pair<int, std::string>> ranked;
  for (const Backward* b : registry()) {
    if (b->roles().fallback > 0) ranked.emplace_back(b->roles().fallback, b->name());
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> names;
  for (auto& [rank, name] : ranked) names.push_back(std::move(name));
  return names;
}

bool stands_for(const std::string& selected, const std::string& impl) {
  if (selected == impl) return true;
  const auto& all = registry();
  auto it = std::find_if(all.begin(), all.end(), [&](auto* b) { return b->name() == selected; });
  return it != all.end() && (*it)->member(impl) != nullptr;
}

std::vector<Candidate> resolve(const std::vector<const Backward*>& selected,
                               const ConvProblem& problem, Pass pass) {
  std::vector<Candidate> out;
  auto add = [&](const Backward* b, const std::string& family) {
    for (const Candidate& c : out) {
      if (c.impl == b) return;
    }
    out.push_back({b, family});
  };
  for (const Backward* b : selected) {
    std::vector<const Backward*> members;
    if (b->available().ok && b->supports(problem, pass).ok) {
      try {
        members = b->members(problem, pass);
      } catch (const std::exception&) {
        // the harness plans the family itself and records its error
      }
    }
    if (members.empty()) members = {b};
    for (const Backward* m : members) add(m, m == b ? "" : b->name());
  }
  return out;
}

namespace {
int g_threads = 0;
}

void set_threads(int threads) {
  // The default is OpenMP's own: OMP_NUM_THREADS when set, else every core. threads() reads the
  // same rule where set_threads was never called (a host application's Autotuner), so that a
  // database tuned by the CLI and the Autotuner that reads it agree on the fingerprint.
  static const int default_threads = omp_get_max_threads();
  if (threads <= 0) threads = default_threads;
  g_threads = threads;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int threads() { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

}  // namespace convbp
