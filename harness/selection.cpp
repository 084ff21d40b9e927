#include "selection.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io.h"

namespace convbp {

std::optional<Best> choose_best(const std::vector<Result>& results) {
  std::vector<const Result*> ok;
  for (const Result& r : results) {
    if (r.status == Status::ok && r.time) ok.push_back(&r);
  }
  if (ok.empty()) return std::nullopt;
  std::sort(ok.begin(), ok.end(),
            [](auto* a, auto* b) { return a->time->median < b->time->median; });
  const Result* first = ok[0];
  Best best;
  if (ok.size() > 1) {
    const Result* second = ok[1];
    // Noise: the larger standard deviation of the two, and never below 1% (run-to-run drift
    // on a shared machine is at least that), nor above 5%: one outlier repetition inflates a
    // stddev without moving the median, and a tie must not hand the win to a far slower result.
    const double noise =
        std::min(std::max({first->time->stddev, second->time->stddev, 0.01 * first->time->median}),
                 0.05 * first->time->median);
    if (second->time->median - first->time->median <= noise) {
      best.tie = true;
      auto rank = [](const Result* r) {
        return std::make_pair(r->deterministic ? 0 : 1, r->workspace_bytes);
      };
      if (rank(second) < rank(first)) std::swap(first, second);
    }
    best.runner_up = second->impl;
    best.margin = second->time->median / first->time->median - 1.0;
  }
  best.impl = first->impl;
  best.time_ms = first->time->median;
  return best;
}

namespace {

std::string general(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", fraction * 100);
  return buf;
}

std::optional<std::string> constraint_violation(const Constraints& constraints,
                                                std::size_t workspace_bytes, bool deterministic,
                                                std::optional<double> max_rel) {
  const auto& max_ws = constraints.max_workspace_bytes;
  const auto& max_err = constraints.max_rel_error;
  if (max_ws && workspace_bytes > *max_ws) {
    return "workspace " + format_bytes(workspace_bytes) + " > " + format_bytes(*max_ws);
  }
  if (constraints.deterministic_only && !deterministic) return "not deterministic";
  if (max_err && (!max_rel || *max_rel > *max_err)) {
    return "max_rel " + (max_rel ? general(*max_rel) : "?") + " > " + general(*max_err);
  }
  return std::nullopt;
}

Selection select_best(const std::vector<Result>& results, const Constraints& constraints) {
  Selection s;
  std::vector<Result> admitted;
  int correct = 0;
  for (const Result& r : results) {
    if (r.status != Status::ok || !r.time) continue;
    ++correct;
    const std::optional<double> max_rel =
        r.error ? std::optional<double>(r.error->max_rel) : std::nullopt;
    if (auto why = constraint_violation(constraints, r.workspace_bytes, r.deterministic, max_rel)) {
      s.excluded.push_back(r.impl + ": " + *why);
    } else {
      admitted.push_back(r);
    }
  }
  s.best = choose_best(admitted);
  if (!s.best && correct == 0) {
    // Why, from the first result that says: "no correct implementation (cudnn.algo1.fp32:
    // error: ...; and 2 more)".
    s.reason = "no correct implementation";
    const auto said = std::find_if(results.begin(), results.end(),
                                   [](const Result& r) { return !r.why.empty(); });
    if (said != results.end()) {
      s.reason += " (" + said->impl + ": " + to_string(said->status) + ": " + said->why;
      if (results.size() > 1) s.reason += "; and " + std::to_string(results.size() - 1) + " more";
      s.reason += ")";
    }
    return s;
  }
  if (!s.best) {
    s.reason = "none of the " + std::to_string(correct) +
               " correct implementations meets the constraints (" + constraints.describe() + ")";
    return s;
  }
  const std::string meeting = s.excluded.empty() ? "" : " meeting the constraints";
  if (admitted.size() == 1) {
    s.reason = "the only correct implementation" + meeting;
  } else if (s.best->tie) {
    auto find = [&](const std::string& name) {
      return *std::find_if(admitted.begin(), admitted.end(),
                           [&](const Result& r) { return r.impl == name; });
    };
    const Result& a = find(s.best->impl);
    const Result& b = find(s.best->runner_up);
    const std::string settled = a.deterministic && !b.deterministic     ? "determinism"
                                : a.workspace_bytes < b.workspace_bytes ? "smaller workspace"
                                                                        : "time";
    s.reason = "tie with " + b.impl + " (" + percent(std::abs(s.best->margin)) +
               ", within noise) settled by " + settled;
  } else {
    s.reason = "fastest of " + std::to_string(admitted.size()) + " correct" + meeting + ", " +
               percent(s.best->margin) + " ahead of " + s.best->runner_up;
  }
  return s;
}

}  // namespace convbp
