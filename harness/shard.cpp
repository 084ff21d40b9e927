#include "shard.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <utility>

#include "runner.h"

namespace convbp {

std::string Shard::text() const { return std::to_string(index) + "/" + std::to_string(count); }

namespace {

bool parse_int(std::string_view text, int& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const std::string what = "--shard " + text + ": ";
  const std::size_t slash = text.find('/');
  Shard s;
  if (slash == std::string::npos || !parse_int(std::string_view(text).substr(0, slash), s.index) ||
      !parse_int(std::string_view(text).substr(slash + 1), s.count)) {
    throw std::invalid_argument(what + "expected I/N, e.g. 0/4 (shard I of N, I from 0 to N-1)");
  }
  if (s.count < 1 || s.count > kMaxShards) {
    throw std::invalid_argument(what + "expected a shard count N from 1 to " +
                                std::to_string(kMaxShards));
  }
  if (s.index < 0 || s.index >= s.count) {
    throw std::invalid_argument(what + "the index counts from 0 (as SLURM_ARRAY_TASK_ID with " +
                                "--array=0-" + std::to_string(s.count - 1) +
                                " and JOB_COMPLETION_INDEX do): expected 0 to " +
                                std::to_string(s.count - 1));
  }
  return s;
}

std::vector<std::size_t> shard_cases(const std::vector<CaseSpec>& cases, const Shard& shard) {
  // Units: the cases of one key and pass, in a map so that their order is the key's, never the
  // suite's (a reordered suite gives the same shares).
  struct Unit {
    double weight = 0;
    std::vector<std::size_t> cases;
  };
  std::map<std::pair<std::string, int>, Unit> units;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    Unit& u = units[{cases[i].problem.key(), int(cases[i].pass)}];
    u.weight += cases[i].problem.flops();
    u.cases.push_back(i);
  }
  std::vector<const Unit*> order;
  for (const auto& [id, unit] : units) order.push_back(&unit);
  // Heaviest first; stable, so equal weights keep the key order.
  std::stable_sort(order.begin(), order.end(),
                   [](const Unit* a, const Unit* b) { return a->weight > b->weight; });
  std::vector<double> load(std::size_t(shard.count), 0.0);
  std::vector<std::size_t> mine;
  for (const Unit* u : order) {
    const auto lightest = std::min_element(load.begin(), load.end()) - load.begin();
    load[std::size_t(lightest)] += u->weight;
    if (lightest == shard.index) mine.insert(mine.end(), u->cases.begin(), u->cases.end());
  }
  std::sort(mine.begin(), mine.end());
  return mine;
}

}  // namespace convbp
