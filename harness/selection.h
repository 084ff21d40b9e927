// Choosing among measured results: the fastest correct one, and the fastest that meets a user's
// constraints (workspace, determinism, error). Used by `convbp run`, `convbp tune`, the tuning
// database's merges and the Autotuner (its database hits, its tunings and its fallback).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autotuner.h"
#include "report.h"

namespace convbp {

// Chooses the best ok result by median time; a winner whose margin is inside the noise of
// either measurement is a tie, settled by determinism, then smaller workspace.
std::optional<Best> choose_best(const std::vector<Result>& results);

// Why a candidate with these properties breaks the constraints ("workspace 3.1 MiB > 1.0 MiB",
// "not deterministic", "max_rel 0.002 > 0.0001"), or nullopt when it meets them. `max_rel`:
// nullopt when the error was not measured, which fails a max_rel_error constraint.
std::optional<std::string> constraint_violation(const Constraints& constraints,
                                                std::size_t workspace_bytes, bool deterministic,
                                                std::optional<double> max_rel);

// The best result that meets the constraints (choose_best on what is left: fastest
// by median, a tie within the noise settled by determinism, then workspace), with a line per
// ok result the constraints excluded ("onednn.winograd: workspace 3.1 MiB > 1 MiB").
struct Selection {
  std::optional<Best> best;
  std::vector<std::string> excluded;
  // "fastest of 3 correct, 12.4% ahead of im2col_gemm.batched" or "tie with X (0.3%, within
  // noise): settled by determinism"; "no correct implementation meets the constraints ...".
  std::string reason;
};
Selection select_best(const std::vector<Result>& results, const Constraints& constraints);

// "12.4%"
std::string percent(double fraction);

}  // namespace convbp
