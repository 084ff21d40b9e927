// Whole-network totals: what a report's suite costs as a network's backward pass (data +
// weights, every layer weighted by its `count`), with convbp's picks and with each single
// strategy used everywhere (docs/report.md, "network").
//
// The strategies come from the implementations (Backward::strategy(), recorded on each result as
// Result::strategy; a report written before that field is read through the registry): per case a
// strategy takes the fastest correct result of its members. One that has no correct result in a
// case does not cover it, and says so ("covers 44 of 46 cases") instead of summing fewer cases
// silently; its comparison with convbp's picks is made on the cases it covers.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "report.h"

namespace convbp {

// A case a strategy does not cover, and why: its members' statuses ("onednn.auto: unsupported:
// ..."), or "no member ran".
struct Uncovered {
  std::string name;  // the case's suite:layer
  Pass pass = Pass::data;
  std::string why;
};

struct NetworkStrategy {
  std::string name;                  // "convbp" (the picks), a Backward::strategy(), or "pytorch"
  std::string description;           // "convbp's picks", "onednn.auto everywhere", ...
  std::vector<std::string> members;  // implementations seen in the report under the strategy
  double total_ms = 0;               // sum over the covered cases of count x time
  int covered = 0;                   // cases with a time
  std::vector<Uncovered> uncovered;
  // convbp's picks summed over the cases this strategy covers (and the picks do), so that a
  // strategy that covers fewer cases is compared on the same ones; picks_cases counts them.
  double picks_ms_on_covered = 0;
  double strategy_ms_on_common = 0;  // this strategy over those same cases
  int picks_cases = 0;
};

// A layer (a case name and problem key, as in the suite) and each strategy's count-weighted
// time over its passes, null where the strategy covers none of them.
struct NetworkLayer {
  std::string name;
  std::string problem;
  int count = 1;
  std::vector<std::optional<double>> ms;  // per strategy, in NetworkTotals::strategies order
  std::vector<std::string> picks;         // convbp's pick per pass, "pass: impl"
};

struct NetworkTotals {
  // The cases' dtype and layout: a network runs in one, so a report with several has one total
  // for each (network_totals_per_variant).
  DType dtype = DType::f32;
  Layout layout = Layout::nchw;
  int cases = 0;         // cases in the report (layers x passes)
  int convolutions = 0;  // sum of the layers' counts
  std::vector<std::string> passes;
  std::vector<NetworkStrategy> strategies;  // convbp's picks first
  std::vector<NetworkLayer> layers;         // in the report's order
};

// PyTorch's times on the same cases (scripts/torch_conv_bench.py on a GPU, or
// scripts/torch_cpu_bench.py), schema convbp.torch/1.
struct TorchTimes {
  std::string description;  // "PyTorch 1.13.0 on cpu, 2 threads, aten.convolution_backward"
  // (problem key, pass) -> median ms
  std::vector<std::pair<std::pair<std::string, Pass>, double>> times;
  // (problem key, pass) -> why PyTorch has no time (the file's "error" for the case)
  std::vector<std::pair<std::pair<std::string, Pass>, std::string>> errors;
  std::optional<double> find(const std::string& problem, Pass pass) const;
  std::string why_not(const std::string& problem, Pass pass) const;
};

// Throws std::runtime_error naming the file and the JSON path of the first bad field. Of a
// GPU file's two timings per case, the one with TF32 allowed is kept (PyTorch's default for
// convolutions, as convbp's picks may use TF32).
TorchTimes read_torch_times(const std::string& path);

// The totals of a report whose cases share one dtype and layout (those of its first case are
// recorded); `torch` adds PyTorch as a strategy.
NetworkTotals network_totals(const Report& report, const TorchTimes* torch = nullptr);
// One total per dtype and layout among the report's cases, in the order they first appear
// (one for a report of f32 NCHW cases; none for a report without cases).
std::vector<NetworkTotals> network_totals_per_variant(const Report& report,
                                                      const TorchTimes* torch = nullptr);

nlohmann::json to_json(const NetworkTotals& totals);
// The report's "network": an array of to_json(NetworkTotals), one per dtype and layout.
nlohmann::json network_json(const Report& report);
// network_table of each total, one after the other.
std::string network_tables(const Report& report, const TorchTimes* torch = nullptr);

// The text `convbp run` and `convbp show` print under the winners table: each strategy's total,
// its ratio to convbp's picks and its coverage, then the `top` layers that contribute most with
// the picks and their share. Empty when the report has no case.
std::string network_table(const NetworkTotals& totals, std::size_t top = 5);

}  // namespace convbp
