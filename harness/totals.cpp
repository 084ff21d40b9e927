#include "totals.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <stdexcept>

#include "backward.h"
#include "json_input.h"
#include "table.h"

namespace convbp {

namespace {

// The strategy a result counts for: as recorded, else (a report written before results carried
// it) as the implementation of that name declares it now.
std::string strategy_of(const Result& r) {
  if (!r.strategy.empty()) return r.strategy;
  const Backward* b = find_backward(r.impl);
  return b ? b->strategy() : "";
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Milliseconds with three significant digits or more (0.0123, 4.56, 812.3).
std::string ms_text(double ms) { return fixed(ms, ms >= 100 ? 1 : ms >= 10 ? 2 : 3); }

std::string short_name(const std::string& case_name) {
  const auto colon = case_name.find(':');
  return colon == std::string::npos ? case_name : case_name.substr(colon + 1);
}

// Why a strategy has no time in a case: its members' outcomes there.
std::string why_uncovered(const std::vector<const Result*>& members) {
  if (members.empty()) return "not run";
  std::string why;
  for (const Result* r : members) {
    std::string one = r->impl + " " + to_string(r->status);
    if (!r->why.empty()) one += ": " + r->why;
    why += (why.empty() ? "" : "; ") + one;
  }
  return why;
}

}  // namespace

std::optional<double> TorchTimes::find(const std::string& problem, Pass pass) const {
  for (const auto& [key, ms] : times) {
    if (key.first == problem && key.second == pass) return ms;
  }
  return std::nullopt;
}

std::string TorchTimes::why_not(const std::string& problem, Pass pass) const {
  for (const auto& [key, why] : errors) {
    if (key.first == problem && key.second == pass) return "not timed by PyTorch: " + why;
  }
  return "not timed by PyTorch";
}

TorchTimes read_torch_times(const std::string& path) {
  const nlohmann::json doc = read_json_file(path, "PyTorch timing file");
  TorchTimes torch;
  try {
    const JsonReader root(doc, JsonDialect::document);
    if (root["schema"].string() != "convbp.torch/1") {
      root["schema"].fail("expected \"convbp.torch/1\"");
    }
    if (root.has("error")) root["error"].fail("the PyTorch timing failed; it says");
    std::string device = root.has("device") ? root["device"].string() : "";
    torch.description = "PyTorch";
    if (root.has("torch")) torch.description += " " + root["torch"].string();
    if (!device.empty()) torch.description += " on " + device;
    if (root.has("threads")) {
      const auto threads = root["threads"].integer(1, 1 << 20);
      torch.description += ", " + std::to_string(threads) + (threads == 1 ? " thread" : " threads");
    }
    if (root.has("call")) torch.description += ", " + root["call"].string();
    // (problem, pass) -> (tf32, ms): a TF32-allowed timing replaces a strict one.
    std::map<std::pair<std::string, Pass>, std::pair<bool, double>> best;
    const JsonReader cases = root["cases"];
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const JsonReader c = cases[i];
      const std::string problem = c["problem"].string();
      const auto pass = parse_pass(c["pass"].string());
      if (!pass) c["pass"].fail("expected \"data\" or \"weights\"");
      if (!c.has("time_ms")) {  // an error recorded for this case: not covered
        if (c.has("error")) torch.errors.push_back({{problem, *pass}, c["error"].string()});
        continue;
      }
      const bool tf32 = c.has("tf32") && c["tf32"].boolean();
      const double ms = c["time_ms"]["median"].number(0);
      auto [it, fresh] = best.try_emplace({problem, *pass}, tf32, ms);
      if (!fresh && tf32 && !it->second.first) it->second = {tf32, ms};
    }
    for (const auto& [key, value] : best) torch.times.push_back({key, value.second});
  } catch (const JsonInputError& e) {
    throw std::runtime_error(printable(path) + ": " + e.what());
  }
  return torch;
}

NetworkTotals network_totals(const Report& report, const TorchTimes* torch) {
  NetworkTotals totals;
  totals.cases = int(report.cases.size());
  if (!report.cases.empty()) {
    totals.dtype = report.cases.front().problem.dtype;
    totals.layout = report.cases.front().problem.layout;
  }

  // The strategies, in the order their members first appear, kept when one correct result
  // shows it was measured (a CPU run lists cuDNN's entries as unavailable: no strategy there).
  std::vector<std::string> names;
  std::map<std::string, std::vector<std::string>> members;
  for (const Case& c : report.cases) {
    for (const Result& r : c.results) {
      const std::string s = strategy_of(r);
      if (s.empty() || r.status != Status::ok || !r.time) continue;
      if (std::find(names.begin(), names.end(), s) == names.end()) names.push_back(s);
      auto& list = members[s];
      if (std::find(list.begin(), list.end(), r.impl) == list.end()) list.push_back(r.impl);
    }
  }
  totals.strategies.push_back({"convbp", "convbp's picks", {}, 0, 0, {}, 0, 0, 0});
  for (const std::string& s : names) {
    const auto& list = members[s];
    const std::string description =
        list.size() == 1 && list[0] == s ? s + " everywhere" : s + " (fastest of its members)";
    totals.strategies.push_back({s, description, list, 0, 0, {}, 0, 0, 0});
  }
  if (torch) totals.strategies.push_back({"pytorch", torch->description, {}, 0, 0, {}, 0, 0, 0});
  const std::size_t count = totals.strategies.size();

  std::map<std::pair<std::string, std::string>, std::size_t> layer_index;
  for (const Case& c : report.cases) {
    const std::string pass = to_string(c.pass);
    if (std::find(totals.passes.begin(), totals.passes.end(), pass) == totals.passes.end()) {
      totals.passes.push_back(pass);
    }
    const auto key = std::make_pair(c.name, c.problem.key());
    auto [it, fresh] = layer_index.try_emplace(key, totals.layers.size());
    if (fresh) {
      totals.layers.push_back(
          {c.name, key.second, c.count, std::vector<std::optional<double>>(count), {}});
      totals.convolutions += c.count;
    }
    NetworkLayer& layer = totals.layers[it->second];

    // Each strategy's time for this case (null: not covered) and why not.
    std::vector<std::optional<double>> ms(count);
    std::vector<std::string> why(count);
    // A case the run was stopped in counts for no strategy of convbp's: its best and each
    // strategy's fastest member are of the implementations that ran, not of all of them.
    const char* const kInterrupted = "interrupted: the run was stopped during this case";
    if (c.interrupted) {
      why[0] = kInterrupted;
    } else if (c.best) {
      ms[0] = c.best->time_ms;
      layer.picks.push_back(pass + ": " + c.best->impl);
    } else {
      why[0] = "no correct implementation";
    }
    for (std::size_t s = 1; s < count; ++s) {
      const NetworkStrategy& strategy = totals.strategies[s];
      if (torch && s + 1 == count) {
        ms[s] = torch->find(c.problem.key(), c.pass);
        if (!ms[s]) why[s] = torch->why_not(c.problem.key(), c.pass);
        continue;
      }
      if (c.interrupted) {
        why[s] = kInterrupted;
        continue;
      }
      std::vector<const Result*> ran;
      for (const Result& r : c.results) {
        if (strategy_of(r) != strategy.name) continue;
        ran.push_back(&r);
        if (r.status == Status::ok && r.time && (!ms[s] || r.time->median < *ms[s])) {
          ms[s] = r.time->median;
        }
      }
      if (!ms[s]) why[s] = why_uncovered(ran);
    }
    for (std::size_t s = 0; s < count; ++s) {
      NetworkStrategy& strategy = totals.strategies[s];
      if (!ms[s]) {
        strategy.uncovered.push_back({c.name, c.pass, why[s]});
        continue;
      }
      const double weighted = *ms[s] * c.count;
      strategy.total_ms += weighted;
      ++strategy.covered;
      layer.ms[s] = layer.ms[s].value_or(0) + weighted;
      if (ms[0]) {
        strategy.picks_ms_on_covered += *ms[0] * c.count;
        strategy.strategy_ms_on_common += weighted;
        ++strategy.picks_cases;
      }
    }
  }
  return totals;
}

std::vector<NetworkTotals> network_totals_per_variant(const Report& report,
                                                      const TorchTimes* torch) {
  std::vector<Report> parts;
  for (const Case& c : report.cases) {
    auto same = [&](const Report& part) {
      const ConvProblem& first = part.cases.front().problem;
      return first.dtype == c.problem.dtype && first.layout == c.problem.layout;
    };
    auto it = std::find_if(parts.begin(), parts.end(), same);
    if (it == parts.end()) {
      parts.emplace_back();
      it = parts.end() - 1;
    }
    it->cases.push_back(c);
  }
  std::vector<NetworkTotals> out;
  for (const Report& part : parts) out.push_back(network_totals(part, torch));
  return out;
}

nlohmann::json network_json(const Report& report) {
  nlohmann::json out = nlohmann::json::array();
  for (const NetworkTotals& t : network_totals_per_variant(report)) out.push_back(to_json(t));
  return out;
}

std::string network_tables(const Report& report, const TorchTimes* torch) {
  std::string out;
  for (const NetworkTotals& t : network_totals_per_variant(report, torch)) {
    if (!out.empty()) out += "\n";
    out += network_table(t);
  }
  return out;
}

nlohmann::json to_json(const NetworkTotals& totals) {
  using nlohmann::json;
  json strategies = json::array();
  for (const NetworkStrategy& s : totals.strategies) {
    json uncovered = json::array();
    for (const Uncovered& u : s.uncovered) {
      uncovered.push_back({{"name", u.name}, {"pass", to_string(u.pass)}, {"why", u.why}});
    }
    strategies.push_back({{"name", s.name},
                          {"description", s.description},
                          {"members", s.members},
                          {"total_ms", s.total_ms},
                          {"covered", s.covered},
                          {"uncovered", uncovered},
                          {"on_common_cases",
                           {{"cases", s.picks_cases},
                            {"ms", s.strategy_ms_on_common},
                            {"convbp_ms", s.picks_ms_on_covered}}}});
  }
  json layers = json::array();
  for (const NetworkLayer& l : totals.layers) {
    json ms = json::array();
    for (const auto& v : l.ms) ms.push_back(v ? json(*v) : json(nullptr));
    layers.push_back({{"name", l.name},
                      {"problem", l.problem},
                      {"count", l.count},
                      {"ms", ms},
                      {"picks", l.picks}});
  }
  return {{"dtype", to_string(totals.dtype)},
          {"layout", to_string(totals.layout)},
          {"cases", totals.cases},
          {"convolutions", totals.convolutions},
          {"passes", totals.passes},
          {"strategies", strategies},
          {"layers", layers}};
}

std::string network_table(const NetworkTotals& totals, std::size_t top) {
  if (totals.cases == 0 || totals.strategies.empty()) return "";
  using Align = TextTable::Align;
  std::string passes;
  for (const std::string& p : totals.passes) passes += (passes.empty() ? "" : " + ") + p;
  // A report of several dtypes and layouts has one total each; f32 NCHW is named by nothing.
  const bool plain = totals.dtype == DType::f32 && totals.layout == Layout::nchw;
  const std::string variant =
      plain ? "" : std::string(" in ") + to_string(totals.dtype) + " " + to_string(totals.layout);
  std::string out = "network total" + variant + " (backward: " + passes +
                    ", each layer x its count): " + std::to_string(totals.layers.size()) +
                    " layers, " + std::to_string(totals.convolutions) + " convolutions, " +
                    std::to_string(totals.cases) + " cases\n";
  TextTable table({{}, {Align::right}, {Align::right}, {}}, "  ");
  table.add({"strategy", "total ms", "vs picks", "covers"});
  std::string notes;
  for (const NetworkStrategy& s : totals.strategies) {
    const bool all = s.covered == totals.cases;
    std::string covers =
        all ? "all " + std::to_string(totals.cases) + " cases"
            : std::to_string(s.covered) + " of " + std::to_string(totals.cases) + " cases";
    std::string ratio = "-";
    if (s.picks_cases > 0 && s.picks_ms_on_covered > 0) {
      ratio = fixed(s.strategy_ms_on_common / s.picks_ms_on_covered, 2) + "x";
    }
    if (&s != &totals.strategies.front() && s.picks_cases > 0 && s.picks_cases < totals.cases) {
      covers += " (on those, convbp's picks: " + ms_text(s.picks_ms_on_covered) + " ms)";
    }
    table.add({s.description, s.covered ? ms_text(s.total_ms) : "-", ratio, covers});
    for (const Uncovered& u : s.uncovered) {
      std::string why = u.why.size() > 100 ? u.why.substr(0, 97) + "..." : u.why;
      notes += "  not covered by " + s.name + ": " + short_name(u.name) + " " + to_string(u.pass) +
               " (" + why + ")\n";
    }
  }
  out += table.str() + notes;

  // The layers that contribute most with convbp's picks.
  const double picks_total = totals.strategies.front().total_ms;
  std::vector<const NetworkLayer*> ranked;
  for (const NetworkLayer& l : totals.layers) {
    if (l.ms[0]) ranked.push_back(&l);
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](auto* a, auto* b) { return *a->ms[0] > *b->ms[0]; });
  if (ranked.size() > top) ranked.resize(top);
  if (ranked.empty() || picks_total <= 0) return out;
  out += "layers that contribute most with convbp's picks:\n";
  TextTable layers({{}, {Align::right}, {Align::right}, {Align::right}, {}}, "  ");
  layers.add({"layer", "count", "ms", "share", "picks"});
  double shown = 0;
  for (const NetworkLayer* l : ranked) {
    std::string picks;
    for (const std::string& p : l->picks) picks += (picks.empty() ? "" : ", ") + p;
    layers.add({short_name(l->name), std::to_string(l->count), ms_text(*l->ms[0]),
                fixed(100 * *l->ms[0] / picks_total, 1) + "%", picks});
    shown += *l->ms[0];
  }
  out += layers.str();
  if (ranked.size() > 1) {
    out += "  (these " + std::to_string(ranked.size()) + ": " +
           fixed(100 * shown / picks_total, 1) + "% of the picks' total)\n";
  }
  return out;
}

}  // namespace convbp
