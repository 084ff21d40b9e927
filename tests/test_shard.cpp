// --shard I/N and convbp merge: the shares cover a suite once, are balanced by flops, and the
// merged result of shards run as separate processes is the unsharded run's (docs/cluster.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "io.h"
#include "report.h"
#include "run_binary.h"
#include "runner.h"
#include "shard.h"
#include "temp_dir.h"
#include "tuning.h"

namespace convbp {
namespace {

namespace fs = std::filesystem;
using test::run_convbp;

std::string temp_path(const std::string& name) {
  const fs::path dir = test::test_temp_dir("shard");
  fs::remove_all(dir / name);
  return (dir / name).string();
}

Suite suite_named(const std::string& name) {
  return load_suite(std::string(CONVBP_SOURCE_DIR) + "/configs/" + name + ".json");
}

std::string id(const CaseSpec& c) { return c.problem.key() + " " + to_string(c.pass); }

TEST(Shard, ParsesIndexFromZeroAndRejectsTheRestWithTheExpectedRange) {
  EXPECT_EQ(parse_shard("0/1"), (Shard{0, 1}));
  EXPECT_EQ(parse_shard("3/4"), (Shard{3, 4}));
  for (const char* bad : {"4/4", "-1/4", "1/0", "1", "1/", "/4", "a/4", "1/4x", "1-4", ""}) {
    EXPECT_THROW(parse_shard(bad), std::invalid_argument) << bad;
  }
  try {
    parse_shard("4/4");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected 0 to 3"), std::string::npos) << e.what();
  }
}

// Every shipped suite and N from 1 to 9: the shares are disjoint, together every case, and the
// cases of one key and pass (repeated layers) stay in one shard.
TEST(Shard, SharesCoverEverySuiteCaseExactlyOnce) {
  for (const char* name :
       {"smoke", "default", "resnet50", "mobilenet_v2", "vgg16", "torchvision_resnet50"}) {
    const std::vector<CaseSpec> cases = expand_cases(suite_named(name), RunOptions{});
    for (int n = 1; n <= 9; ++n) {
      std::vector<int> owner(cases.size(), -1);
      for (int i = 0; i < n; ++i) {
        for (std::size_t k : shard_cases(cases, Shard{i, n})) {
          ASSERT_LT(k, cases.size());
          EXPECT_EQ(owner[k], -1) << name << " case " << k << " in two shards of " << n;
          owner[k] = i;
        }
      }
      std::map<std::string, int> shard_of_id;
      for (std::size_t k = 0; k < cases.size(); ++k) {
        ASSERT_NE(owner[k], -1) << name << ": case " << k << " in no shard of " << n;
        const auto [it, fresh] = shard_of_id.emplace(id(cases[k]), owner[k]);
        EXPECT_EQ(it->second, owner[k]) << name << ": " << id(cases[k]) << " split, N=" << n;
      }
    }
  }
}

// Greedy assignment's bound: no shard carries more than the mean plus the heaviest unit (printed:
// each suite's heaviest shard against the mean, in flops).
TEST(Shard, SharesAreBalancedByFlops) {
  for (const char* name : {"resnet50", "torchvision_resnet50", "mobilenet_v2"}) {
    const std::vector<CaseSpec> cases = expand_cases(suite_named(name), RunOptions{});
    double total = 0, heaviest = 0;
    for (const CaseSpec& c : cases) {
      total += c.problem.flops();
      heaviest = std::max(heaviest, c.problem.flops());
    }
    for (int n : {2, 4}) {
      double worst = 0;
      for (int i = 0; i < n; ++i) {
        double load = 0;
        for (std::size_t k : shard_cases(cases, Shard{i, n})) load += cases[k].problem.flops();
        worst = std::max(worst, load);
      }
      EXPECT_LE(worst, total / n + heaviest) << name << " N=" << n;
      std::printf("%s: %d shards, heaviest shard %.3f x the mean flops\n", name, n,
                  worst / (total / n));
    }
  }
}

// The share depends on the cases, not on the suite's order: reversing the layers gives every
// shard the same keys and passes.
TEST(Shard, SharesDoNotDependOnLayerOrder) {
  Suite suite = suite_named("resnet50");
  const std::vector<CaseSpec> forward = expand_cases(suite, RunOptions{});
  std::reverse(suite.layers.begin(), suite.layers.end());
  const std::vector<CaseSpec> backward = expand_cases(suite, RunOptions{});
  for (int i = 0; i < 3; ++i) {
    std::set<std::string> a, b;
    for (std::size_t k : shard_cases(forward, Shard{i, 3})) a.insert(id(forward[k]));
    for (std::size_t k : shard_cases(backward, Shard{i, 3})) b.insert(id(backward[k]));
    EXPECT_EQ(a, b) << "shard " << i << "/3";
  }
}

std::vector<std::string> case_ids(const Report& r) {
  std::vector<std::string> out;
  for (const Case& c : r.cases)
    out.push_back(c.name + " " + c.problem.key() + " " + to_string(c.pass));
  return out;
}

// What each case tried and how each candidate ended (timings aside).
std::map<std::string, std::set<std::string>> outcomes(const Report& r) {
  std::map<std::string, std::set<std::string>> out;
  for (const Case& c : r.cases) {
    auto& s = out[c.name + " " + to_string(c.pass)];
    for (const Result& x : c.results) s.insert(x.impl + " " + to_string(x.status));
  }
  return out;
}

// Three shards of `convbp tune smoke`, each its own process with its own report and database,
// merged, against one unsharded tune. What this proves: the merged report has the unsharded
// run's cases in its order, each case tried the same implementations with the same outcomes,
// each winner is one of its case's ok results, and the merged database holds the same entries
// with the same candidates. Winners: with `naive` alone the ranking cannot flip, so they must be
// equal; with several implementations the fastest on tiny shapes is a matter of microseconds
// and the load of the machine, so only the sets are compared.
TEST(ShardCli, ThreeShardsMergedEqualTheUnshardedTune) {
  for (const std::string impls : {"naive", "naive,im2col_gemm.*"}) {
    SCOPED_TRACE("--impl " + impls);
    const std::string dir = temp_path(impls == "naive" ? "one" : "several");
    fs::create_directories(dir);
    const std::string common = "tune smoke --reps 1 --threads 1 -q --impl '" + impls + "' ";
    auto whole = run_convbp(common + "--db " + dir + "/whole.db.json -o " + dir + "/whole.json");
    ASSERT_EQ(whole.status, 0) << whole.output;
    std::string reports, dbs;
    for (int i = 0; i < 3; ++i) {
      const std::string s = dir + "/s" + std::to_string(i);
      auto shard = run_convbp(common + "--shard " + std::to_string(i) + "/3 --db " + s +
                              ".db.json -o " + s + ".json");
      ASSERT_EQ(shard.status, 0) << shard.output;
      reports = s + ".json " + reports;  // given in reverse: the merge restores the order
      dbs += s + ".db.json ";
    }
    auto merged = run_convbp("merge -o " + dir + "/merged.json " + reports);
    ASSERT_EQ(merged.status, 0) << merged.output;
    auto merged_db = run_convbp("merge -o " + dir + "/merged.db.json " + dbs);
    ASSERT_EQ(merged_db.status, 0) << merged_db.output;
    EXPECT_EQ(merged_db.output.find("note:"), std::string::npos) << merged_db.output;

    const Report a = read_report(dir + "/whole.json"), b = read_report(dir + "/merged.json");
    EXPECT_EQ(case_ids(a), case_ids(b));
    EXPECT_EQ(outcomes(a), outcomes(b));
    EXPECT_FALSE(b.settings.contains("shard"));
    EXPECT_EQ(b.settings["merged"].size(), 3u);
    for (std::size_t k = 0; k < b.cases.size() && k < a.cases.size(); ++k) {
      const Case& c = b.cases[k];
      ASSERT_TRUE(c.best) << c.name;
      EXPECT_TRUE(std::any_of(
          c.results.begin(), c.results.end(),
          [&](const Result& r) { return r.impl == c.best->impl && r.status == Status::ok; }))
          << c.name << " " << to_string(c.pass) << ": best " << c.best->impl;
      if (impls == "naive") {
        EXPECT_EQ(c.best->impl, a.cases[k].best->impl) << c.name;
      }
    }
    const TuningDb da = read_tuning_db(dir + "/whole.db.json");
    const TuningDb db = read_tuning_db(dir + "/merged.db.json");
    ASSERT_EQ(da.sections.size(), 1u);
    ASSERT_EQ(db.sections.size(), 1u);
    EXPECT_EQ(da.sections[0].fingerprint, db.sections[0].fingerprint);
    std::map<std::string, std::vector<std::string>> ca, cb;
    for (const TuningEntry& e : da.sections[0].entries)
      ca[e.problem.key() + " " + to_string(e.pass)] = e.candidates;
    for (const TuningEntry& e : db.sections[0].entries)
      cb[e.problem.key() + " " + to_string(e.pass)] = e.candidates;
    EXPECT_EQ(ca, cb);
  }
}

// Bad merges stop with status 2 and say why; --duplicates settles a repeated case and says so.
TEST(ShardCli, MergeRefusesBadInputsAndSettlesDuplicatesByTheStatedRule) {
  const std::string dir = temp_path("bad");
  fs::create_directories(dir);
  const std::string common = "run smoke --reps 1 --threads 1 -q --impl naive --pass data ";
  for (int i = 0; i < 2; ++i) {
    const std::string s = dir + "/s" + std::to_string(i) + ".json";
    ASSERT_EQ(run_convbp(common + "--shard " + std::to_string(i) + "/2 -o " + s).status, 0);
  }
  ASSERT_EQ(run_convbp(common + "-o " + dir + "/whole.json").status, 0);
  ASSERT_EQ(run_convbp(common + "--problem n1_c2_h5_w5_k2_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1 -o " +
                       dir + "/one.json")
                .status,
            0);
  auto expect_error = [&](const std::string& args, const std::string& words) {
    const auto out = run_convbp("merge -o " + dir + "/out.json " + args);
    EXPECT_EQ(out.status, 2) << args << "\n" << out.output;
    EXPECT_NE(out.output.find(words), std::string::npos) << args << "\n" << out.output;
  };
  expect_error(dir + "/s0.json", "shard(s) 1 of 2 missing");
  expect_error(dir + "/s0.json " + dir + "/s0.json " + dir + "/s1.json", "shard 0/2 twice");
  expect_error(dir + "/s0.json " + dir + "/whole.json", "is not a shard");
  expect_error(dir + "/whole.json " + dir + "/whole.json", "settle it with --duplicates");
  expect_error(dir + "/nothing.json", "cannot read");
  {
    std::ofstream(dir + "/text.json") << "{\"schema\": \"other/1\"}";
    expect_error(dir + "/text.json", "$.schema: expected");
    std::ofstream(dir + "/shard.json")
        << R"({"schema": "convbp.report/1", "context": {}, "complete": true,
              "settings": {"shard": {"index": 5, "count": 2, "suite_cases": 2,
                                     "case_indices": [0]}}, "cases": []})";
    expect_error(dir + "/shard.json", "$.settings.shard: expected index < count");
  }
  const auto first = run_convbp("merge --duplicates first -o " + dir + "/out.json " + dir +
                                "/whole.json " + dir + "/one.json " + dir + "/whole.json");
  ASSERT_EQ(first.status, 0) << first.output;
  EXPECT_NE(first.output.find("note: smoke:3x3 data"), std::string::npos) << first.output;
  const Report whole = read_report(dir + "/whole.json");
  const Report out = read_report(dir + "/out.json");
  EXPECT_EQ(out.cases.size(), whole.cases.size() + 1);
}

// A non-shard report given first, a shard after it: the message names each for what it is.
TEST(ShardCli, MergingAShardWithAnUnshardedReportNamesTheShard) {
  const std::string dir = temp_path("mixed");
  fs::create_directories(dir);
  Report full;
  full.settings = {{"suite", "x"}};
  Report shard = full;
  shard.settings["shard"] = {
      {"index", 0}, {"count", 1}, {"suite_cases", 0}, {"case_indices", nlohmann::json::array()}};
  write_json_atomic(dir + "/full.json", to_json(full));
  write_json_atomic(dir + "/r0.json", to_json(shard));
  const auto out =
      run_convbp("merge -o " + dir + "/m.json " + dir + "/full.json " + dir + "/r0.json");
  EXPECT_EQ(out.status, 2) << out.output;
  EXPECT_NE(out.output.find(dir + "/full.json is not a shard (no settings.shard) but " + dir +
                            "/r0.json is"),
            std::string::npos)
      << out.output;
  EXPECT_FALSE(fs::exists(dir + "/m.json"));
}

// Two databases holding the same key and pass, measured with different implementations: the
// merge keeps both implementations' results (merge_entries, as a re-tune) and says so.
TEST(ShardCli, MergedDatabasesKeepEveryImplementationOfAConflictingEntryAndSayIt) {
  const std::string dir = temp_path("dbs");
  fs::create_directories(dir);
  const std::string key = "--problem n1_c2_h5_w5_k2_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1 --pass data";
  const std::string common = "tune " + key + " --reps 1 --threads 1 -q ";
  ASSERT_EQ(run_convbp(common + "--impl naive --db " + dir + "/a.json").status, 0);
  ASSERT_EQ(run_convbp(common + "--impl im2col_gemm.per_sample --db " + dir + "/b.json").status, 0);
  const auto merged =
      run_convbp("merge -o " + dir + "/m.json " + dir + "/a.json " + dir + "/b.json");
  ASSERT_EQ(merged.status, 0) << merged.output;
  EXPECT_NE(merged.output.find("note: n1_c2_h5_w5_k2"), std::string::npos) << merged.output;
  const TuningDb db = read_tuning_db(dir + "/m.json");
  ASSERT_EQ(db.entry_count(), 1u);
  std::set<std::string> impls;
  for (const TunedResult& r : db.sections[0].entries[0].results) impls.insert(r.impl);
  EXPECT_EQ(impls, (std::set<std::string>{"naive", "im2col_gemm.per_sample"}));
  // A report and a database do not merge; a damaged database is named and left untouched.
  std::ofstream(dir + "/bad.json") << R"({"schema": "convbp.tuning/1", "sections": 3})";
  const auto bad = run_convbp("merge -o " + dir + "/m.json " + dir + "/bad.json");
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("bad.json"), std::string::npos) << bad.output;
  EXPECT_EQ(read_tuning_db(dir + "/m.json").entry_count(), 1u);
}

}  // namespace
}  // namespace convbp
