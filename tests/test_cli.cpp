// The convbp binary end to end: exit statuses, messages, no report on bad input, --dump.
#include <gtest/gtest.h>
#include <sched.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "npy.h"
#include "report.h"
#include "run_binary.h"
#include "runner.h"
#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;

using convbp::test::Outcome;

// `env`: VAR=value settings for this run only ("" for none).
Outcome convbp_with_env(const std::string& env, const std::string& args) {
  return convbp::test::run_convbp(args, env);
}

Outcome convbp(const std::string& args) { return convbp::test::run_convbp(args); }

std::string temp_path(const std::string& name) {
  const fs::path dir = convbp::test::test_temp_dir("cli");
  fs::remove_all(dir / name);
  return (dir / name).string();
}

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}

const char* kTinySuite = R"({"suite": "tiny", "timing": {"reps": 1, "max_seconds_per_case": 0.2},
  "impls": ["naive", "im2col_gemm.*"],
  "layers": [{"name": "a", "n": 2, "c": 4, "h": 6, "w": 5, "k": 3, "r": 3, "pad": 1}]})";

TEST(Cli, BadInputExitsWithStatus2AndOneLineNamingTheProblemAndWritesNoReport) {
  const std::string report = temp_path("bad.json");
  const std::string unknown_key =
      write_file("unknown_key.json",
                 R"({"suite": "x", "layers": [{"c": 4, "h": 8, "k": 4, "r": 3, "strides": 2}]})");
  const std::string empty = write_file("empty.json", "");
  struct Case {
    std::string args, message;
  } cases[] = {
      {"run /nonexistent.json", "/nonexistent.json: no such config file"},
      {"run " + empty, "malformed JSON"},
      {"run " + unknown_key, "layers[0].strides: unknown key"},
      {"run smoke --impl nosuch.*", "pattern 'nosuch.*' matches no implementation"},
      {"run smoke --problem n8_c64", "bad problem key 'n8_c64'"},
      {"run smoke --problem n8_c6_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g4",
       "c=6 is not divisible by groups=4"},
      {"run smoke --pass forward", "--pass: expected data or weights"},
      {"run smoke --threads zero", "--threads: expected an integer >= 1"},
      {"run smoke --bogus", "unknown option '--bogus'"},
      {"frobnicate", "unknown command 'frobnicate'"},
      {"show /nonexistent/report.json", "cannot open report"},
      {"cases smoke --problem n8_c64", "bad problem key 'n8_c64'"},
      {"cases smoke --pass forward", "--pass: expected data or weights"},
      {"cases smoke --impl naive", "unknown option '--impl'"},
      {"cases /nonexistent.json", "/nonexistent.json: no such config file"},
  };
  for (const auto& c : cases) {
    const bool is_run = c.args.rfind("run", 0) == 0;
    const Outcome out = convbp(c.args + (is_run ? " -o " + report : ""));
    EXPECT_EQ(out.status, 2) << c.args << "\n" << out.output;
    EXPECT_NE(out.output.find(c.message), std::string::npos) << c.args << "\n" << out.output;
    EXPECT_EQ(std::count(out.output.begin(), out.output.end(), '\n'), 1) << out.output;
    EXPECT_FALSE(fs::exists(report)) << c.args << " left a report";
  }
}

TEST(Cli, AnUnwritableOutputPathIsAClearErrorBeforeMeasuring) {
  const Outcome out = convbp("run smoke -o /nonexistent_dir/report.json");
  EXPECT_EQ(out.status, 2) << out.output;
  EXPECT_NE(out.output.find("directory /nonexistent_dir does not exist"), std::string::npos)
      << out.output;
}

TEST(Cli, HelpIsAvailableForEveryCommand) {
  for (const char* cmd : {"--help", "list --help", "run --help", "validate --help", "show --help",
                          "tune --help", "cases --help"}) {
    const Outcome out = convbp(cmd);
    EXPECT_EQ(out.status, 0) << cmd;
    EXPECT_NE(out.output.find("usage: convbp"), std::string::npos) << cmd << "\n" << out.output;
  }
}

TEST(Cli, ListNamesTheReferenceAndTheSeedAlgorithm) {
  const Outcome out = convbp("list");
  EXPECT_EQ(out.status, 0);
  EXPECT_NE(out.output.find("naive"), std::string::npos);
  EXPECT_NE(out.output.find("im2col_gemm.per_sample"), std::string::npos);
  // The roles come from the implementations (Roles), not from the CLI.
  EXPECT_NE(out.output.find("Reference: naive"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("Speedup baselines: im2col_gemm.per_sample (cpu)"), std::string::npos)
      << out.output;
}

TEST(Cli, RunWritesAReportThatShowReadsBack) {
  const std::string suite = write_file("tiny.json", kTinySuite);
  const std::string report = temp_path("tiny_report.json");
  const Outcome out = convbp("run " + suite + " -o " + report);
  ASSERT_EQ(out.status, 0) << out.output;
  const convbp::Report r = convbp::read_report(report);
  EXPECT_TRUE(r.complete);
  ASSERT_EQ(r.cases.size(), 2u);  // both passes
  for (const auto& c : r.cases) {
    ASSERT_EQ(c.results.size(), convbp::select_impls({"naive", "im2col_gemm.*"}, true).size());
    for (const auto& res : c.results) EXPECT_EQ(res.status, convbp::Status::ok) << res.why;
    EXPECT_TRUE(c.best.has_value());
  }
  const Outcome shown = convbp("show " + report);
  EXPECT_EQ(shown.status, 0);
  EXPECT_NE(shown.output.find("tiny:a"), std::string::npos) << shown.output;
}

TEST(Cli, IsolateRunsCandidatesInChildrenAndTheReportSaysSoWithTheLimit) {
  const std::string suite = write_file("tiny_isolated.json", kTinySuite);
  auto settings_of = [&](const std::string& options) {
    const std::string report = temp_path("isolated_report.json");
    const Outcome out = convbp("run " + suite + " --impl naive -o " + report + options);
    EXPECT_EQ(out.status, 0) << options << "\n" << out.output;
    const convbp::Report r = convbp::read_report(report);
    for (const auto& c : r.cases) EXPECT_EQ(c.results.at(0).status, convbp::Status::ok);
    return r.settings;
  };
  const nlohmann::json isolated = settings_of(" --isolate");
  EXPECT_EQ(isolated["isolate"], true);
  EXPECT_EQ(isolated["candidate_timeout_s"], 60 + 10 * 0.2);  // the suite's max_seconds_per_case
  EXPECT_EQ(settings_of(" --isolate --candidate-timeout 7.5")["candidate_timeout_s"], 7.5);
  const nlohmann::json by_default = settings_of("");  // in one process (docs/isolation.md)
  EXPECT_EQ(by_default["isolate"], false);
  EXPECT_TRUE(by_default["candidate_timeout_s"].is_null());
  EXPECT_EQ(settings_of(" --isolate --no-isolate")["isolate"], false);
  const Outcome bad = convbp("run " + suite + " --candidate-timeout 0");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("--candidate-timeout: expected seconds from 0.1 to 1000000, got '0'"),
            std::string::npos)
      << bad.output;
}

TEST(Cli, IsolatedCandidatesOutputsAreListedInTheDumpIndex) {
  const std::string suite = write_file("tiny_isolated_dump.json", kTinySuite);
  const std::string dir = temp_path("isolated_dump");
  const Outcome out =
      convbp("validate " + suite + " --isolate --impl im2col_gemm.batched --dump " + dir);
  ASSERT_EQ(out.status, 0) << out.output;
  std::ifstream in(dir + "/index.json");
  ASSERT_TRUE(in) << "no index.json";
  const auto index = nlohmann::json::parse(in);
  ASSERT_EQ(index["cases"].size(), 2u);
  const auto& data = index["cases"][0];
  const std::string dx = data["outputs"]["im2col_gemm.batched"]["dx"].get<std::string>();
  std::vector<std::int64_t> shape;
  convbp::read_npy_f32(dir + "/" + data["dir"].get<std::string>() + "/" + dx, &shape);
  EXPECT_EQ(shape, (std::vector<std::int64_t>{2, 4, 6, 5}));
  EXPECT_TRUE(index["cases"][1]["outputs"]["im2col_gemm.batched"].contains("dw"));
}

TEST(Cli, ProblemKeyRunsExactlyThatProblem) {
  const std::string key = "n1_c3_h7_w5_k2_r3_s1_st2x1_pad1x0x0x0_dil1x1_g1";
  const std::string report = temp_path("key_report.json");
  const Outcome out = convbp("run --problem " + key + " --impl naive --pass weights -o " + report);
  ASSERT_EQ(out.status, 0) << out.output;
  const convbp::Report r = convbp::read_report(report);
  ASSERT_EQ(r.cases.size(), 1u);
  EXPECT_EQ(r.cases[0].problem.key(), key);
  EXPECT_EQ(r.cases[0].pass, convbp::Pass::weights);
}

// The sizes here are worked out by hand from the design's formulas, not by ConvProblem: the
// scripts that read `convbp cases` trust these figures instead of computing them.
TEST(Cli, CasesPrintsEveryCaseWithKeyOutputSizeElementCountsAndFlops) {
  const std::string suite = write_file("cases.json", R"({"suite": "shapes", "source": "by hand",
    "defaults": {"n": 2}, "passes": ["weights", "data"],
    "layers": [{"name": "a", "c": 4, "h": 6, "w": 5, "k": 3, "r": 3, "pad": 1, "count": 3},
               {"name": "odd", "n": 3, "c": 5, "h": 17, "w": 9, "k": 7, "r": 2, "s": 5,
                "stride": [2, 1], "pad": [1, 0, 2, 1], "dilation": [1, 2]}]})");
  const Outcome out = convbp("cases " + suite + " --json");
  ASSERT_EQ(out.status, 0) << out.output;
  const nlohmann::json doc = nlohmann::json::parse(out.output);
  EXPECT_EQ(doc["schema"], "convbp.cases/1");
  EXPECT_EQ(doc["suite"], "shapes");
  EXPECT_EQ(doc["source"], "by hand");
  EXPECT_EQ(doc["file"], suite);
  EXPECT_EQ(doc["passes"], nlohmann::json({"weights", "data"}));
  const nlohmann::json& cases = doc["cases"];
  ASSERT_EQ(cases.size(), 4u) << out.output;
  const std::string a = "n2_c4_h6_w5_k3_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1";
  const std::string odd = "n3_c5_h17_w9_k7_r2_s5_st2x1_pad1x0x2x1_dil1x2_g1";
  struct Expected {
    std::string name, pass, key;
    int count, p, q;
    double flops;
    std::int64_t x, w, dy, db, accumulation;
  } expected[] = {
      // p = (6+1+1-3)/1+1 = 6, q = (5+1+1-3)/1+1 = 5; flops = 2*n*k*p*q*(c/g)*r*s.
      {"shapes:a", "weights", a, 3, 6, 5, 2.0 * 2 * 3 * 6 * 5 * 4 * 3 * 3, 240, 108, 180, 3, 60},
      {"shapes:a", "data", a, 3, 6, 5, 12960, 240, 108, 180, 3, 27},
      // p = (17+1+2-2)/2+1 = 10, q = (9+0+1-9)/1+1 = 2 (the kernel's dilated width is 9).
      {"shapes:odd", "weights", odd, 1, 10, 2, 2.0 * 3 * 7 * 10 * 2 * 5 * 2 * 5, 3 * 5 * 17 * 9,
       7 * 5 * 2 * 5, 3 * 7 * 10 * 2, 7, 3 * 10 * 2},
      // Stride 2 over 2 rows: one of the kernel's rows lands on a dx row, so 7 * 1 * 5.
      {"shapes:odd", "data", odd, 1, 10, 2, 42000, 2295, 350, 420, 7, 7 * 1 * 5}};
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const nlohmann::json& c = cases[i];
    const Expected& e = expected[i];
    SCOPED_TRACE(e.name + " " + e.pass);
    EXPECT_EQ(c["name"], e.name);
    EXPECT_EQ(c["pass"], e.pass);
    EXPECT_EQ(c["problem"], e.key);
    EXPECT_EQ(c["count"], e.count);
    EXPECT_EQ(c["p"], e.p);
    EXPECT_EQ(c["q"], e.q);
    EXPECT_EQ(c["flops"].get<double>(), e.flops);
    EXPECT_EQ(c["elements"], nlohmann::json({{"x", e.x}, {"w", e.w}, {"dy", e.dy}, {"db", e.db}}));
    EXPECT_EQ(c["accumulation_length"], e.accumulation);
  }
  EXPECT_EQ(cases[2]["stride"], nlohmann::json({2, 1}));
  EXPECT_EQ(cases[2]["pad"], nlohmann::json({1, 0, 2, 1}));
  EXPECT_EQ(cases[2]["dilation"], nlohmann::json({1, 2}));
  EXPECT_EQ(cases[2]["s"], 5);
  EXPECT_EQ(cases[0]["s"], 3) << "s defaults to r";
  EXPECT_EQ(cases[0]["w"], 5);

  // --problem and --pass narrow the cases as they narrow a run; the text form is one line each.
  const Outcome one = convbp("cases " + suite + " --pass data --problem " + odd);
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_EQ(one.output, "shapes:" + odd + "  data  " + odd + "\n");
  const Outcome text = convbp("cases " + suite);
  EXPECT_EQ(text.output.substr(0, text.output.find('\n')), "shapes:a  weights  " + a);
  EXPECT_EQ(std::count(text.output.begin(), text.output.end(), '\n'), 4) << text.output;
}

TEST(Cli, DumpWritesNpyFilesAndTheIndexDescribedInTheDesign) {
  const std::string suite = write_file("tiny_dump.json", kTinySuite);
  const std::string dir = temp_path("dump");
  const Outcome out = convbp("validate " + suite + " --impl im2col_gemm.batched --dump " + dir);
  ASSERT_EQ(out.status, 0) << out.output;
  std::ifstream in(dir + "/index.json");
  ASSERT_TRUE(in) << "no index.json";
  const auto index = nlohmann::json::parse(in);
  ASSERT_EQ(index["cases"].size(), 2u);
  const auto& data = index["cases"][0];
  EXPECT_EQ(data["pass"], "data");
  EXPECT_EQ(data["problem"], "n2_c4_h6_w5_k3_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  EXPECT_EQ(data["pad"], nlohmann::json::array({1, 1, 1, 1}));
  const std::string case_dir = dir + "/" + data["dir"].get<std::string>();
  std::vector<std::int64_t> shape;
  const auto dx = convbp::read_npy_f32(
      case_dir + "/" + data["outputs"]["im2col_gemm.batched"]["dx"].get<std::string>(), &shape);
  EXPECT_EQ(shape, (std::vector<std::int64_t>{2, 4, 6, 5}));
  const auto w =
      convbp::read_npy_f32(case_dir + "/" + data["inputs"]["w"].get<std::string>(), &shape);
  EXPECT_EQ(shape, (std::vector<std::int64_t>{3, 4, 3, 3}));
  const auto& weights = index["cases"][1];
  EXPECT_TRUE(weights["outputs"]["im2col_gemm.batched"].contains("dw"));
  EXPECT_TRUE(weights["outputs"]["im2col_gemm.batched"].contains("db"));
  EXPECT_TRUE(weights["inputs"].contains("x"));
}

}  // namespace

namespace {

// A bad -o is refused before the --dump folder is made (nothing is left behind), and -o into
// that folder, which does not exist yet, is checked once it does.
TEST(Cli, ABadOutputLeavesNoDumpFolderBehind) {
  const std::string dump = temp_path("dump_not_made");
  const std::string not_a_report = write_file("not_a_report.json", R"({"x": 1})");
  const Outcome bad = convbp("validate smoke --impl naive --dump " + dump + " -o " + not_a_report);
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_FALSE(fs::exists(dump)) << bad.output;
  const Outcome inside = convbp("validate smoke --impl naive --pass data --dump " + dump + " -o " +
                                dump + "/report.json");
  EXPECT_EQ(inside.status, 0) << inside.output;
  EXPECT_TRUE(fs::exists(dump + "/report.json")) << inside.output;
}

// OMP_NUM_THREADS sets the default thread count, so it is held to --threads' range: beyond the
// CPUs the process may use, the run is refused before measuring.
TEST(Cli, OmpNumThreadsBeyondTheCpusIsBadInput) {
  const Outcome out =
      convbp_with_env("OMP_NUM_THREADS=1025", "cases smoke --pass data");  // measures nothing
  EXPECT_EQ(out.status, 0) << "cases ignores threads:\n" << out.output;
  const Outcome run = convbp_with_env("OMP_NUM_THREADS=1025", "run smoke --impl naive -q");
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_NE(run.output.find("OMP_NUM_THREADS=1025: this process may use"), std::string::npos)
      << run.output;
}

// An option given twice takes its last value, --problem too; the pass a replaced --problem
// stated does not linger (a benchdnn line with --dir=BWD_D, then a key that states none: both
// passes).
TEST(Cli, TheLastProblemGivenStatesThePass) {
  const std::string key = "n1_c2_h5_w5_k2_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1";
  const Outcome out =
      convbp("cases --problem '--dir=BWD_D mb1ic2ih5oc2oh5kh3ph1' --problem " + key);
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_NE(out.output.find(" data "), std::string::npos) << out.output;
  EXPECT_NE(out.output.find(" weights "), std::string::npos) << out.output;
  const Outcome last = convbp("cases --problem " + key + " --problem '--dir=BWD_WB " +
                              "mb1ic2ih5oc2oh5kh3ph1' --pass weights");
  EXPECT_EQ(last.status, 0) << last.output;
  EXPECT_EQ(last.output.find(" data "), std::string::npos) << last.output;
}

TEST(Cli, ValidateMarksBatchedCorrectWhenOpenMpGivesFewerThreadsThanAsked) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) < 2) {
    GTEST_SKIP() << "--threads 2 needs 2 usable CPUs (convbp refuses more threads than CPUs)";
  }
  // n = 4 split over 2 planned threads; OMP_THREAD_LIMIT=1 gives a team of one.
  const std::string key = "n4_c3_h6_w6_k4_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1";
  const Outcome out = convbp_with_env(
      "OMP_THREAD_LIMIT=1", "validate --threads 2 --impl im2col_gemm.batched --problem " + key);
  EXPECT_EQ(out.status, 0) << "problem " << key << " seed 1:\n" << out.output;
}

}  // namespace
