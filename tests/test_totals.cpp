#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "backward.h"
#include "io.h"
#include "report.h"
#include "run_binary.h"
#include "selection.h"
#include "totals.h"

namespace convbp {
namespace {

Result timed(const std::string& impl, const std::string& strategy, double ms) {
  Result r;
  r.impl = impl;
  r.strategy = strategy;
  r.time = TimeStats{ms, ms, ms, 0, 5, 1, false, {}};
  return r;
}

Result declined(const std::string& impl, const std::string& strategy, Status status,
                const std::string& why) {
  Result r;
  r.impl = impl;
  r.strategy = strategy;
  r.status = status;
  r.why = why;
  return r;
}

Case make_case(const std::string& name, const std::string& key, Pass pass, int count,
               std::vector<Result> results) {
  Case c;
  c.name = name;
  c.problem = ConvProblem::parse_key(key);
  c.pass = pass;
  c.count = count;
  c.flops = c.problem.flops();
  c.results = std::move(results);
  c.best = choose_best(c.results);
  return c;
}

constexpr const char* kA = "n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1";
constexpr const char* kB = "n8_c3_h224_w224_k64_r7_s7_st2x2_pad3x3x3x3_dil1x1_g1";

// Two layers (counts 3 and 1), both passes. The "lib" strategy has one member that declines
// layer b's weights pass; "gemm" covers every case; "pair" has two members, the faster per case
// counting.
Report two_layer_report() {
  Report report;
  report.context = {{"cpu", {{"model", "test"}}}, {"threads", 2}};
  report.settings = {{"suite", "net"}};
  report.cases = {
      make_case(
          "net:a", kA, Pass::data, 3,
          {timed("lib.auto", "lib", 2.0), timed("gemm.one", "gemm", 4.0), timed("fast.x", "", 1.0),
           timed("pair.p", "pair", 5.0), timed("pair.q", "pair", 3.0)}),
      make_case("net:a", kA, Pass::weights, 3,
                {timed("lib.auto", "lib", 2.5), timed("gemm.one", "gemm", 3.0),
                 timed("pair.p", "pair", 6.0)}),
      make_case("net:b", kB, Pass::data, 1,
                {timed("lib.auto", "lib", 10.0), timed("gemm.one", "gemm", 8.0),
                 timed("pair.q", "pair", 9.0)}),
      make_case("net:b", kB, Pass::weights, 1,
                {declined("lib.auto", "lib", Status::unsupported, "needs more channels"),
                 timed("gemm.one", "gemm", 7.0), timed("pair.q", "pair", 7.5)}),
  };
  return report;
}

const NetworkStrategy& strategy(const NetworkTotals& totals, const std::string& name) {
  for (const NetworkStrategy& s : totals.strategies) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no strategy " + name);
}

TEST(NetworkTotals, PicksAndEachStrategyAreCountWeightedOverBothPasses) {
  const NetworkTotals totals = network_totals(two_layer_report());
  EXPECT_EQ(totals.cases, 4);
  EXPECT_EQ(totals.convolutions, 4);  // 3 + 1
  ASSERT_EQ(totals.layers.size(), 2u);
  ASSERT_EQ(totals.strategies.size(), 4u);  // convbp's picks, lib, gemm, pair (first seen)
  EXPECT_EQ(totals.strategies[0].name, "convbp");
  // Picks: a data 1.0, a weights 2.5 (x3); b data 8.0, b weights 7.0 (x1).
  EXPECT_DOUBLE_EQ(totals.strategies[0].total_ms, 3 * (1.0 + 2.5) + 8.0 + 7.0);
  EXPECT_DOUBLE_EQ(strategy(totals, "gemm").total_ms, 3 * (4.0 + 3.0) + 8.0 + 7.0);
  EXPECT_EQ(strategy(totals, "gemm").covered, 4);
  EXPECT_EQ(strategy(totals, "gemm").description, "gemm (fastest of its members)");
  // "pair": the faster member per case (3.0 over 5.0 on a's data).
  EXPECT_DOUBLE_EQ(strategy(totals, "pair").total_ms, 3 * (3.0 + 6.0) + 9.0 + 7.5);
  EXPECT_EQ(strategy(totals, "pair").members, (std::vector<std::string>{"pair.p", "pair.q"}));
  // Layer a's picks: count-weighted data + weights.
  ASSERT_TRUE(totals.layers[0].ms[0].has_value());
  EXPECT_DOUBLE_EQ(*totals.layers[0].ms[0], 3 * (1.0 + 2.5));
  EXPECT_EQ(totals.layers[0].count, 3);
}

TEST(NetworkTotals, AStrategyThatDeclinesACaseSaysSoAndIsComparedOnTheCasesItCovers) {
  const NetworkTotals totals = network_totals(two_layer_report());
  const NetworkStrategy& lib = strategy(totals, "lib");
  EXPECT_EQ(lib.covered, 3);
  ASSERT_EQ(lib.uncovered.size(), 1u);
  EXPECT_EQ(lib.uncovered[0].name, "net:b");
  EXPECT_EQ(lib.uncovered[0].pass, Pass::weights);
  EXPECT_NE(lib.uncovered[0].why.find("lib.auto unsupported: needs more channels"),
            std::string::npos)
      << lib.uncovered[0].why;
  EXPECT_DOUBLE_EQ(lib.total_ms, 3 * (2.0 + 2.5) + 10.0);
  // The same three cases with the picks: never the fourth.
  EXPECT_EQ(lib.picks_cases, 3);
  EXPECT_DOUBLE_EQ(lib.picks_ms_on_covered, 3 * (1.0 + 2.5) + 8.0);
  const std::string text = network_table(totals);
  EXPECT_NE(text.find("3 of 4 cases"), std::string::npos) << text;
  EXPECT_NE(text.find("not covered by lib: b weights"), std::string::npos) << text;
  EXPECT_NE(text.find("all 4 cases"), std::string::npos) << text;
}

TEST(NetworkTotals, TopLayersAreRankedByThePicksTimeWithTheirShare) {
  const std::string text = network_table(network_totals(two_layer_report()), 1);
  // a: 10.5 ms of 25.5 = 41.2%; b: 15 ms = 58.8%, the first and, with top = 1, the only one.
  EXPECT_NE(text.find("58.8%"), std::string::npos) << text;
  EXPECT_EQ(text.find("41.2%"), std::string::npos) << text;
  EXPECT_NE(text.find("data: gemm.one, weights: gemm.one"), std::string::npos) << text;
}

TEST(NetworkTotals, ACaseWithoutACorrectResultIsNotCoveredByThePicks) {
  Report report = two_layer_report();
  for (Result& r : report.cases[3].results) r.status = Status::incorrect;
  report.cases[3].best = choose_best(report.cases[3].results);
  const NetworkTotals totals = network_totals(report);
  EXPECT_EQ(totals.strategies[0].covered, 3);
  EXPECT_EQ(totals.strategies[0].uncovered.at(0).why, "no correct implementation");
  EXPECT_NE(network_table(totals).find("3 of 4 cases"), std::string::npos);
}

// A case cut short by a signal holds the results of the implementations that ran: its best and
// each strategy's fastest member there are not what a full run measures, so no total of
// convbp's counts it, and each says why; PyTorch's times come from elsewhere and still count.
TEST(NetworkTotals, AnInterruptedCaseCountsForNoStrategyOfConvbps) {
  Report report = two_layer_report();
  report.cases[2].interrupted = true;
  report.cases[2].complete = false;
  TorchTimes torch;
  torch.description = "PyTorch";
  torch.times = {{{kB, Pass::data}, 9.5}};
  const NetworkTotals totals = network_totals(report, &torch);
  for (const NetworkStrategy& s : totals.strategies) {
    if (s.name == "pytorch") {
      EXPECT_EQ(s.covered, 1);
      EXPECT_EQ(s.picks_cases, 0) << "compared with the picks on the cases both cover";
      continue;
    }
    ASSERT_FALSE(s.uncovered.empty()) << s.name;
    const auto it = std::find_if(s.uncovered.begin(), s.uncovered.end(),
                                 [](const Uncovered& u) { return u.pass == Pass::data; });
    ASSERT_NE(it, s.uncovered.end()) << s.name;
    EXPECT_EQ(it->name, "net:b");
    EXPECT_EQ(it->why, "interrupted: the run was stopped during this case") << s.name;
  }
  EXPECT_EQ(strategy(totals, "convbp").covered, 3);
  EXPECT_EQ(strategy(totals, "gemm").covered, 3);
  EXPECT_DOUBLE_EQ(strategy(totals, "convbp").total_ms, 3 * 1.0 + 3 * 2.5 + 7.0);
}

// A report written before results carried their strategy: read through the registry, whose
// implementations declare them (Backward::strategy()), so the harness names none.
TEST(NetworkTotals, OlderReportsFindTheStrategiesThroughTheImplementationsRoles) {
  const Backward* batched = find_backward("im2col_gemm.batched");
  ASSERT_NE(batched, nullptr);
  ASSERT_FALSE(batched->strategy().empty());
  EXPECT_TRUE(find_backward("im2col_gemm.per_sample")->strategy().empty());
  Report report = two_layer_report();
  for (Case& c : report.cases) {
    c.results.push_back(timed("im2col_gemm.batched", "", 20.0));
    c.results.push_back(timed("im2col_gemm.per_sample", "", 30.0));
  }
  const NetworkTotals totals = network_totals(report);
  const NetworkStrategy& s = strategy(totals, batched->strategy());
  EXPECT_EQ(s.covered, 4);
  EXPECT_EQ(s.members, std::vector<std::string>{"im2col_gemm.batched"});
  EXPECT_EQ(s.description, batched->strategy() + " everywhere");
  EXPECT_DOUBLE_EQ(s.total_ms, 20.0 * (3 + 3 + 1 + 1));
}

// Every strategy an available implementation declares: cuDNN's legacy algorithms share one.
TEST(NetworkTotals, StrategiesAreDeclaredByTheImplementations) {
  int declared = 0;
  for (const Backward* b : registry()) declared += b->strategy().empty() ? 0 : 1;
  EXPECT_GE(declared, 1);
#if CONVBP_WITH_ONEDNN
  ASSERT_NE(find_backward("onednn.auto"), nullptr);
  EXPECT_FALSE(find_backward("onednn.auto")->strategy().empty());
  EXPECT_TRUE(find_backward("onednn.auto.native")->strategy().empty());
#endif
}

TEST(NetworkTotals, TheReportCarriesItAndReadsBack) {
  const Report report = two_layer_report();
  const nlohmann::json doc = to_json(report);
  ASSERT_TRUE(doc.contains("network"));
  ASSERT_EQ(doc["network"].size(), 1u);  // one dtype and layout
  const auto& net = doc["network"][0];
  EXPECT_EQ(net["dtype"], "f32");
  EXPECT_EQ(net["layout"], "nchw");
  EXPECT_EQ(net["cases"], 4);
  EXPECT_EQ(net["strategies"][0]["name"], "convbp");
  EXPECT_EQ(net["strategies"][1]["covered"], 3);
  EXPECT_EQ(net["strategies"][1]["uncovered"][0]["pass"], "weights");
  EXPECT_EQ(net["layers"][1]["count"], 1);
  EXPECT_EQ(doc["cases"][0]["results"][0]["strategy"], "lib");
  const std::string path = ::testing::TempDir() + "/network_report.json";
  write_json_atomic(path, doc);
  EXPECT_EQ(to_json(read_report(path)), doc);
}

// A network runs in one dtype and layout: a suite of several has one total for each, never one
// sum across them.
TEST(NetworkTotals, EachDtypeAndLayoutHasItsOwnTotal) {
  Report report = two_layer_report();
  const Report f32 = two_layer_report();
  for (Case c : f32.cases) {
    c.problem = ConvProblem::parse_key(c.problem.key() + "_bf16_nhwc");
    for (Result& r : c.results) {
      if (r.time) r.time->median /= 2;
    }
    c.best = choose_best(c.results);
    report.cases.push_back(c);
  }
  const std::vector<NetworkTotals> totals = network_totals_per_variant(report);
  ASSERT_EQ(totals.size(), 2u);
  EXPECT_EQ(totals[0].dtype, DType::f32);
  EXPECT_EQ(totals[1].dtype, DType::bf16);
  EXPECT_EQ(totals[1].layout, Layout::nhwc);
  EXPECT_EQ(totals[1].cases, 4);
  EXPECT_DOUBLE_EQ(totals[1].strategies[0].total_ms, totals[0].strategies[0].total_ms / 2);
  const std::string text = network_tables(report);
  EXPECT_NE(text.find("network total (backward"), std::string::npos) << text;
  EXPECT_NE(text.find("network total in bf16 nhwc (backward"), std::string::npos) << text;
  EXPECT_EQ(to_json(report)["network"].size(), 2u);
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A GPU file (torch_conv_bench.py) times every case with TF32 off and on: the TF32-allowed one,
// PyTorch's default, is kept; a case PyTorch failed is not covered.
TEST(NetworkTotals, PyTorchTimesJoinAsOneMoreStrategy) {
  const std::string path = ::testing::TempDir() + "/torch_gpu.json";
  write_file(path, std::string(R"({"schema": "convbp.torch/1", "torch": "1.13.0", "device": "H200",
    "cases": [
      {"problem": ")") +
                       kA + R"(", "pass": "data", "tf32": false, "time_ms": {"median": 9.0}},
      {"problem": ")" + kA +
                       R"(", "pass": "data", "tf32": true, "time_ms": {"median": 1.5}},
      {"problem": ")" + kA +
                       R"(", "pass": "weights", "tf32": true, "time_ms": {"median": 2.0}},
      {"problem": ")" + kB +
                       R"(", "pass": "data", "tf32": true, "time_ms": {"median": 4.0}},
      {"problem": ")" + kB +
                       R"(", "pass": "weights", "tf32": true, "error": "out of memory"}]})");
  const TorchTimes torch = read_torch_times(path);
  EXPECT_EQ(torch.description, "PyTorch 1.13.0 on H200");
  const NetworkTotals totals = network_totals(two_layer_report(), &torch);
  const NetworkStrategy& pytorch = totals.strategies.back();
  EXPECT_EQ(pytorch.name, "pytorch");
  EXPECT_EQ(pytorch.covered, 3);
  EXPECT_DOUBLE_EQ(pytorch.total_ms, 3 * (1.5 + 2.0) + 4.0);
  EXPECT_EQ(pytorch.uncovered.at(0).why, "not timed by PyTorch: out of memory");
}

TEST(NetworkTotals, ABadPyTorchFileIsAnErrorNamingTheFileAndPath) {
  const std::string path = ::testing::TempDir() + "/torch_bad.json";
  write_file(path, R"({"schema": "convbp.torch/1", "cases": [{"problem": "x", "pass": "sideways",
    "time_ms": {"median": 1}}]})");
  try {
    read_torch_times(path);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("torch_bad.json"), std::string::npos) << what;
    EXPECT_NE(what.find("$.cases[0].pass"), std::string::npos) << what;
  }
  write_file(path, R"({"schema": "convbp.torch/1", "error": "cannot import torch", "cases": []})");
  EXPECT_THROW(read_torch_times(path), std::runtime_error);
}

TEST(NetworkTotals, ShowPrintsTheTotalAndTakesPyTorchTimes) {
  const std::string report = ::testing::TempDir() + "/show_network.json";
  write_json_atomic(report, to_json(two_layer_report()));
  const std::string torch = ::testing::TempDir() + "/show_torch.json";
  write_file(torch, std::string(R"({"schema": "convbp.torch/1", "torch": "1.13", "device": "cpu",
    "threads": 2, "cases": [{"problem": ")") +
                        kA + R"(", "pass": "data",
    "time_ms": {"median": 2.0}}]})");
  auto out = test::run_convbp("show " + report);
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("network total (backward: data + weights"), std::string::npos)
      << out.output;
  EXPECT_NE(out.output.find("convbp's picks"), std::string::npos) << out.output;
  out = test::run_convbp("show " + report + " --torch " + torch);
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("PyTorch 1.13 on cpu, 2 threads"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("not covered by pytorch: b data (not timed by PyTorch)"),
            std::string::npos)
      << out.output;
  EXPECT_NE(out.output.find("1 of 4 cases"), std::string::npos) << out.output;
  out = test::run_convbp("show " + report + " --torch " + ::testing::TempDir() + "/none.json");
  EXPECT_EQ(out.status, 2) << out.output;
  EXPECT_NE(out.output.find("--torch: "), std::string::npos) << out.output;
}

}  // namespace
}  // namespace convbp
