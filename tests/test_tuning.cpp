// The tuning database and the run-time API: round trip, no re-measuring, stale fingerprints,
// constraints, corrupt files, concurrent tuners, interruption, merging re-tuned entries,
// budget-limited timeouts, tuners in threads and Google Benchmark's process state.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "autotuner.h"
#include "context.h"
#include "io.h"
#include "naive.h"
#include "run_binary.h"
#include "selection.h"
#include "temp_dir.h"
#include "timing.h"
#include "tune.h"
#include "tuning.h"

extern char** environ;

// --- a second writer at the worst moment -----------------------------------------------------
//
// The test binary's own stat() (it interposes libc's for the whole program, convbp's code
// included): when armed, the first stat of the armed path made while nobody holds the path's
// lock and after the file exists replaces the file, as another tuner would, under that lock.
// A reader that takes a file's version by a stat outside the lock then sees the other writer's
// version without its entries.
namespace {
struct Interloper {
  std::mutex mutex;
  std::string path, replacement;
  bool armed = false;
  int fired = 0;
};
Interloper& interloper() {
  static Interloper i;
  return i;
}
thread_local bool in_interloper = false;

void interloper_before_stat(const char* path) {
  Interloper& i = interloper();
  if (in_interloper) return;
  std::lock_guard<std::mutex> guard(i.mutex);
  if (!i.armed || i.path != path) return;
  in_interloper = true;
  const int file = ::open(path, O_RDONLY | O_CLOEXEC);
  if (file >= 0) {
    ::close(file);
    const int lock = ::open((i.path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock >= 0 && ::flock(lock, LOCK_EX | LOCK_NB) == 0) {  // a real writer waits for it
      if (std::rename(i.replacement.c_str(), path) == 0) ++i.fired;
      i.armed = false;
      ::flock(lock, LOCK_UN);
    }
    if (lock >= 0) ::close(lock);
  }
  in_interloper = false;
}
}  // namespace

extern "C" int stat(const char* path, struct stat* buf) noexcept {
  using Real = int (*)(const char*, struct stat*);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "stat"));
  interloper_before_stat(path);
  return real(path, buf);
}

namespace convbp {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string temp_path(const std::string& name) {
  const fs::path dir = test::test_temp_dir("tuning");
  fs::remove_all(dir / name);
  fs::remove_all(dir / (name + ".lock"));
  return (dir / name).string();
}

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

using test::Outcome;

Outcome convbp(const std::string& args) { return test::run_convbp(args); }

// A suite of `layers` small 3x3 layers (distinct shapes: c grows), both passes.
std::string tiny_suite(const std::string& name, int layers, int first_c, int reps = 1) {
  std::string text = R"({"suite": ")" + name + R"(", "impls": ["naive", "im2col_gemm.*"],
    "timing": {"warmup": 0, "reps": )" +
                     std::to_string(reps) + R"(, "max_seconds_per_case": 0.5}, "layers": [)";
  for (int i = 0; i < layers; ++i) {
    text += std::string(i ? "," : "") + R"({"name": "l)" + std::to_string(i) +
            R"(", "n": 2, "c": )" + std::to_string(first_c + i) +
            R"(, "h": 10, "w": 9, "k": 6, "r": 3, "pad": 1})";
  }
  return text + "]}";
}

// How many implementations the tiny suites run: naive and every im2col_gemm variant.
std::size_t tiny_impl_count() { return select_impls({"naive", "im2col_gemm.*"}, false).size(); }

Suite tiny(int layers, int first_c) {
  return parse_suite(nlohmann::json::parse(tiny_suite("tiny", layers, first_c)), "tiny");
}

RunOptions quiet_options() {
  RunOptions options;
  options.reps = 1;
  return options;
}

// A test implementation: im2col_gemm.per_sample's plan, with a sleep in every call and a count
// of calls in flight at once (across threads). Registered once per process.
struct Probe {
  std::atomic<int> in_flight{0}, most_at_once{0}, calls{0};
};
class ProbeBackward : public Backward {
 public:
  ProbeBackward(std::string name, int sleep_ms, Probe* probe)
      : name_(std::move(name)), sleep_ms_(sleep_ms), probe_(probe) {}
  std::string name() const override { return name_; }
  Support supports(const ConvProblem&, Pass) const override { return Support::yes(); }
  std::unique_ptr<Plan> plan(const ConvProblem& problem, Pass pass) const override {
    return std::make_unique<ProbePlan>(find_backward("im2col_gemm.per_sample")->plan(problem, pass),
                                       sleep_ms_, probe_);
  }

 private:
  class ProbePlan : public Plan {
   public:
    ProbePlan(std::unique_ptr<Plan> inner, int sleep_ms, Probe* probe)
        : inner_(std::move(inner)), sleep_ms_(sleep_ms), probe_(probe) {}
    std::size_t workspace_bytes() const override { return inner_->workspace_bytes(); }
    void run(const Tensors& host, void* workspace) override {
      const int now = ++probe_->in_flight;
      int most = probe_->most_at_once;
      while (now > most && !probe_->most_at_once.compare_exchange_weak(most, now)) {
      }
      ++probe_->calls;
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
      inner_->run(host, workspace);
      --probe_->in_flight;
    }

   private:
    std::unique_ptr<Plan> inner_;
    int sleep_ms_;
    Probe* probe_;
  };
  std::string name_;
  int sleep_ms_;
  Probe* probe_;
};

Probe& registered_probe(const std::string& name, int sleep_ms) {
  static std::map<std::string, std::unique_ptr<Probe>> probes;
  auto& probe = probes[name];
  if (!probe) {
    probe = std::make_unique<Probe>();
    add_backward(std::make_unique<ProbeBackward>(name, sleep_ms, probe.get()));
  }
  return *probe;
}

// An entry for `spec` as if every tiny-suite implementation had been timed (made-up figures).
TuningEntry made_up_entry(const CaseSpec& spec) {
  TuningEntry e;
  e.problem = spec.problem;
  e.pass = spec.pass;
  e.tuned_as = "another tuner";
  e.date = "2024-01-01T00:00:00Z";
  double ms = 1.0;
  for (const Backward* b : select_impls({"naive", "im2col_gemm.*"}, false)) {
    e.candidates.push_back(b->name());
    e.results.push_back({b->name(), ms, 0.001, 3, 0, true, 1e-7, ""});
    ms *= 2;
  }
  e.best = Best{e.results[0].impl, e.results[0].median_ms, e.results[1].impl, 1.0, false};
  return e;
}

TuningEntry sample_entry() {
  TuningEntry e;
  e.problem = ConvProblem::parse_key("n3_c5_h17_w9_k7_r2_s5_st2x1_pad1x0x2x1_dil1x2_g1");
  e.pass = Pass::weights;
  e.tuned_as = "smoke:odd";
  e.date = "2024-01-02T03:04:05Z";
  e.candidates = {"naive", "im2col_gemm.batched", "winograd.f2x3"};
  e.results = {{"im2col_gemm.batched", 0.25, 0.01, 5, 4096, true, 1.5e-7, "threads"},
               {"naive", 3.5, 0.125, 3, 0, true, 0.0, ""}};
  e.rejected = {{"winograd.f2x3", Status::unsupported, "needs 3x3 kernel, stride 1, dilation 1"}};
  e.best = Best{"im2col_gemm.batched", 0.25, "naive", 13.0, false};
  return e;
}

// --- the database ----------------------------------------------------------------------------

TEST(TuningDb, RoundTripThroughTheFileKeepsEveryField) {
  const std::string path = temp_path("round_trip.json");
  const nlohmann::json fp_a = {{"convbp", "test"}, {"threads", 2}};
  const nlohmann::json fp_b = {{"convbp", "test"}, {"threads", 1}};
  TuningEntry second = sample_entry();
  second.pass = Pass::data;
  second.best.reset();
  second.results.clear();
  merge_into_file(path, fp_a, {sample_entry(), second});
  merge_into_file(path, fp_b, {sample_entry()});
  const TuningDb back = read_tuning_db(path);
  ASSERT_EQ(back.sections.size(), 2u);
  EXPECT_EQ(back.entry_count(), 3u);
  const TuningEntry* e = back.find(fp_a, sample_entry().problem, Pass::weights);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(*e, sample_entry());
  const TuningEntry* d = back.find(fp_a, sample_entry().problem, Pass::data);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(*d, second);
  EXPECT_EQ(back.find(fp_b, sample_entry().problem, Pass::data), nullptr);
  EXPECT_EQ(to_json(back)["schema"], kTuningSchema);
  EXPECT_EQ(to_json(back), to_json(tuning_db_from_json(to_json(back), "x")));
  // A second write of the same entry replaces it; nothing else changes.
  merge_into_file(path, fp_a, {sample_entry()});
  EXPECT_EQ(read_tuning_db(path).entry_count(), 3u);
}

// The message tuning_db_from_json gives for the sample entry with `edit` applied, "" if none.
std::string error_of_edited_entry(const std::function<void(nlohmann::json&)>& edit) {
  TuningDb db;
  db.put({{"convbp", "test"}, {"threads", 2}}, sample_entry());
  nlohmann::json doc = to_json(db);
  edit(doc["sections"][0]["entries"][0]);
  try {
    tuning_db_from_json(doc, "t.json");
    return "";
  } catch (const TuningError& e) {
    return e.what();
  }
}

// Merges order entries by date, as strings: only dates in the form convbp writes, and real ones,
// are accepted. A date in the future reads (clocks differ between machines); the merge refuses
// it (BadInput class merge_db_date_in_the_future).
TEST(TuningDb, ADateIsARealUtcTimeAsConvbpWritesIt) {
  for (const char* good :
       {"2024-02-29T23:59:60Z", "2000-02-29T00:00:00Z", "1999-12-31T23:59:59Z"}) {
    EXPECT_EQ(error_of_edited_entry([&](nlohmann::json& e) { e["date"] = good; }), "") << good;
  }
  EXPECT_EQ(error_of_edited_entry([](nlohmann::json& e) { e["date"] = utc_now(); }), "");
  for (const char* bad : {"yesterday", "2024-01-02 03:04:05Z", "2024-01-02T03:04:05",
                          "2024-1-02T03:04:05Z", "2024-01-02T03:04:05+00:00",
                          "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z", "2024-04-31T00:00:00Z",
                          "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-01-00T00:00:00Z",
                          "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:61Z"}) {
    const std::string error = error_of_edited_entry([&](nlohmann::json& e) { e["date"] = bad; });
    EXPECT_NE(error.find("t.json: $.sections[0].entries[0].date: "), std::string::npos) << bad;
    EXPECT_NE(error.find(std::string("\"") + bad + "\""), std::string::npos) << error;
  }
  EXPECT_EQ(error_of_edited_entry([](nlohmann::json& e) { e["date"] = "2999-01-01T00:00:00Z"; }),
            "");
}

// What convbp never writes is an error at its path: a repetition count of 0, a best whose time
// is not its result's, a runner-up that is not another result or whose margin is not the two
// medians', an implementation twice in one list, a thread count below 1.
TEST(TuningDb, AnInconsistentEntryIsAnErrorAtItsPath) {
  const std::string entry = "t.json: $.sections[0].entries[0].";
  // Each edit of a good entry, and the start of the error it must give.
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> wrong = {
      {[](nlohmann::json& e) { e["results"][1]["reps"] = 0; },
       "results[1].reps: expected an integer from 1"},
      {[](nlohmann::json& e) { e["best"]["time_ms"] = 3.5; },
       "best.time_ms: expected the median_ms of \"im2col_gemm.batched\""},
      {[](nlohmann::json& e) { e["best"]["runner_up"] = "winograd.f2x3"; },
       "best.runner_up: \"winograd.f2x3\" is not another of the ranked"},
      {[](nlohmann::json& e) { e["best"]["runner_up"] = "im2col_gemm.batched"; },
       "best.runner_up: \"im2col_gemm.batched\" is not another"},
      {[](nlohmann::json& e) { e["best"]["margin"] = 0.5; },
       "best.margin: expected the runner_up's median over the best's, less 1 (13), got 0.5"},
      {[](nlohmann::json& e) { e["best"]["runner_up"] = ""; },
       "best.margin: expected 0 where there is no runner_up, got 13.0"},
      {[](nlohmann::json& e) { e["candidates"].push_back("naive"); },
       "candidates[3]: \"naive\" is listed twice"},
      {[](nlohmann::json& e) { e["results"].push_back(e["results"][1]); },
       "results[2].impl: \"naive\" is listed twice"},
      {[](nlohmann::json& e) { e["rejected"].push_back(e["rejected"][0]); },
       "rejected[1].impl: \"winograd.f2x3\" is listed twice"}};
  for (const auto& [edit, expected] : wrong) {
    const std::string error = error_of_edited_entry(edit);
    EXPECT_NE(error.find(entry + expected), std::string::npos) << error;
  }
  EXPECT_EQ(error_of_edited_entry([](nlohmann::json& e) {
              e["best"]["runner_up"] = "";
              e["best"]["margin"] = 0;
            }),
            "")
      << "a best without a runner-up (the others excluded by constraints)";
  for (int threads : {0, -2}) {
    TuningDb db;
    db.put({{"convbp", "test"}, {"threads", threads}}, sample_entry());
    try {
      tuning_db_from_json(to_json(db), "t.json");
      ADD_FAILURE() << "accepted threads " << threads;
    } catch (const TuningError& e) {
      EXPECT_NE(std::string(e.what()).find("t.json: $.sections[0].fingerprint.threads: expected "
                                           "an integer from 1 to 2147483647, got " +
                                           std::to_string(threads)),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(TuningDb, CaseToEntryAndBackKeepsWhatSelectionNeeds) {
  Case c;
  c.name = "s:l";
  c.problem = sample_entry().problem;
  c.pass = Pass::weights;
  Result fast, slow, wrong;
  fast.impl = "a";
  fast.time = TimeStats{1.0, 0.9, 1.2, 0.05, 3, 1, false, {}};
  fast.error = ErrorStats{};
  fast.error->max_rel = 2e-7;
  fast.workspace_bytes = 100;
  fast.deterministic = false;
  slow = fast;
  slow.impl = "b";
  slow.time->median = 2.0;
  slow.deterministic = true;
  wrong.impl = "c";
  wrong.status = Status::incorrect;
  wrong.why = "dw: 3 NaN elements";
  c.results = {slow, wrong, fast};
  const TuningEntry e = entry_from_case(c);
  EXPECT_EQ(e.candidates, (std::vector<std::string>{"b", "c", "a"}));
  ASSERT_EQ(e.results.size(), 2u);
  EXPECT_EQ(e.results[0].impl, "a");  // ranked fastest first
  EXPECT_EQ(e.results[0].max_rel, 2e-7);
  ASSERT_EQ(e.rejected.size(), 1u);
  EXPECT_EQ(e.rejected[0].why, "dw: 3 NaN elements");
  ASSERT_TRUE(e.best);
  EXPECT_EQ(e.best->impl, "a");
  const Case back = case_from_entry(e, "s:l", 1, {{"a"}, {"c"}});
  ASSERT_EQ(back.results.size(), 2u);
  EXPECT_EQ(back.results[0].impl, "a");
  EXPECT_EQ(back.results[1].status, Status::incorrect);
  EXPECT_EQ(missing_candidate(e, {{"a"}, {"d"}}), "d");
  EXPECT_EQ(missing_candidate(e, {{"a"}, {"b"}}), std::nullopt);
}

// --- selection -------------------------------------------------------------------------------

Result ok_result(std::string impl, double ms, std::size_t workspace, bool deterministic,
                 double max_rel) {
  Result r;
  r.impl = std::move(impl);
  r.time = TimeStats{ms, ms, ms, 0.001 * ms, 5, 1, false, {}};
  r.error = ErrorStats{};
  r.error->max_rel = max_rel;
  r.workspace_bytes = workspace;
  r.deterministic = deterministic;
  return r;
}

TEST(Selection, ConstraintsFilterBeforeTheFastestIsChosen) {
  const std::vector<Result> results = {
      ok_result("fast_atomic", 1.0, 0, false, 1e-7),
      ok_result("big_workspace", 1.5, 64 << 20, true, 1e-7),
      ok_result("winograd_like", 2.0, 0, true, 5e-5),
      ok_result("plain", 4.0, 0, true, 1e-7),
  };
  auto pick = [&](const Constraints& c) {
    const Selection s = select_best(results, c);
    return s.best ? s.best->impl : "none: " + s.reason;
  };
  EXPECT_EQ(pick({}), "fast_atomic");
  Constraints det;
  det.deterministic_only = true;
  EXPECT_EQ(pick(det), "big_workspace");
  Constraints det_ws = det;
  det_ws.max_workspace_bytes = 1 << 20;
  EXPECT_EQ(pick(det_ws), "winograd_like");
  Constraints all = det_ws;
  all.max_rel_error = 1e-6;
  EXPECT_EQ(pick(all), "plain");
  const Selection s = select_best(results, all);
  EXPECT_EQ(s.excluded.size(), 3u);
  EXPECT_NE(s.excluded[1].find("workspace 64.0 MiB > 1.0 MiB"), std::string::npos) << s.excluded[1];
  all.max_rel_error = 1e-9;
  EXPECT_EQ(pick(all).rfind("none: none of the 4 correct implementations meets", 0), 0u)
      << pick(all);
}

TEST(Selection, ATieWithinTheNoiseGoesToTheDeterministicThenTheSmallerWorkspace) {
  Result a = ok_result("atomic", 1.0, 0, false, 0), b = ok_result("ordered", 1.005, 0, true, 0);
  Selection s = select_best({a, b}, {});
  ASSERT_TRUE(s.best);
  EXPECT_TRUE(s.best->tie);
  EXPECT_EQ(s.best->impl, "ordered");
  EXPECT_NE(s.reason.find("settled by determinism"), std::string::npos) << s.reason;
  Result c = ok_result("small", 1.004, 0, true, 0), d = ok_result("large", 1.0, 4096, true, 0);
  s = select_best({c, d}, {});
  EXPECT_EQ(s.best->impl, "small");
  EXPECT_NE(s.reason.find("smaller workspace"), std::string::npos) << s.reason;
  // A noisy runner-up far behind is no tie: one outlier inflates a stddev, not the median.
  Result noisy = ok_result("noisy_slow", 10.0, 0, true, 0);
  noisy.time->stddev = 20.0;
  s = select_best({a, noisy}, {});
  EXPECT_EQ(s.best->impl, "atomic");
  EXPECT_FALSE(s.best->tie);
}

TEST(Selection, ByteSizesParseWithBinarySuffixes) {
  EXPECT_EQ(parse_bytes("1048576"), 1048576u);
  EXPECT_EQ(parse_bytes("64K"), 65536u);
  EXPECT_EQ(parse_bytes("1.5M"), 1572864u);
  EXPECT_EQ(parse_bytes("2GiB"), 2147483648u);
  EXPECT_EQ(parse_bytes("0"), 0u);
  EXPECT_EQ(parse_bytes("lots"), std::nullopt);
  EXPECT_EQ(parse_bytes("3X"), std::nullopt);
  EXPECT_EQ(parse_bytes("-1"), std::nullopt);
}

// --- tuning a suite --------------------------------------------------------------------------

TEST(Tune, ASecondTuneOfTheSameSuiteMeasuresNothing) {
  const std::string db = temp_path("second.json");
  const Suite suite = tiny(2, 4);
  const TuneOutcome first = tune_suite(suite, quiet_options(), {db, {}, false});
  EXPECT_EQ(first.measured, 4);
  EXPECT_EQ(first.from_database, 0);
  EXPECT_TRUE(first.report.complete);
  EXPECT_EQ(read_tuning_db(db).entry_count(), 4u);

  // Nothing is measured again (no reference, no timing): the speed of a re-run follows, and is
  // reported by benchmarks, not asserted here.
  const TuneOutcome second = tune_suite(suite, quiet_options(), {db, {}, false});
  EXPECT_EQ(second.measured, 0);
  EXPECT_EQ(second.from_database, 4);
  ASSERT_EQ(second.report.cases.size(), first.report.cases.size());
  for (std::size_t i = 0; i < first.report.cases.size(); ++i) {
    const Case& a = first.report.cases[i];
    const Case& b = second.report.cases[i];
    ASSERT_TRUE(a.best && b.best) << a.problem.key();
    EXPECT_EQ(a.best->impl, b.best->impl) << a.problem.key();
    EXPECT_EQ(a.best->time_ms, b.best->time_ms) << a.problem.key();
    EXPECT_EQ(a.results.size(), b.results.size()) << a.problem.key();
  }
  // A narrower implementation set is answered from the same entries; a wider one is not.
  RunOptions narrow = quiet_options();
  narrow.impls = {"im2col_gemm.batched"};
  EXPECT_EQ(tune_suite(suite, narrow, {db, {}, false}).measured, 0);
  // --retune measures again.
  EXPECT_EQ(tune_suite(suite, quiet_options(), {db, {}, true}).measured, 4);
}

TEST(Tune, AChangedFingerprintForcesRetuningAndKeepsTheOldSection) {
  const std::string db = temp_path("stale.json");
  const Suite suite = tiny(1, 4);
  ASSERT_EQ(tune_suite(suite, quiet_options(), {db, {}, false}).measured, 2);
  // As if the database came from an older convbp: same machine, other version.
  nlohmann::json doc = nlohmann::json::parse(read_file(db));
  doc["sections"][0]["fingerprint"]["convbp"] = "0.0.1+old";
  write_json_atomic(db, doc);

  const TuneOutcome again = tune_suite(suite, quiet_options(), {db, {}, false});
  EXPECT_EQ(again.measured, 2);
  EXPECT_EQ(again.from_database, 0);
  ASSERT_FALSE(again.notes.empty());
  EXPECT_NE(again.notes[0].find("convbp 0.0.1+old -> " + convbp_version()), std::string::npos)
      << again.notes[0];
  const TuningDb back = read_tuning_db(db);
  ASSERT_EQ(back.sections.size(), 2u);
  EXPECT_EQ(back.sections[0].fingerprint["convbp"], "0.0.1+old");
  EXPECT_EQ(back.sections[1].fingerprint, machine_fingerprint(threads()));
}

TEST(Tune, ConstraintsChooseTheReportedBestButEveryResultIsStored) {
  const std::string db = temp_path("constrained.json");
  TuneSettings settings{db, {}, false};
  settings.constraints.max_workspace_bytes = 0;  // im2col with a col buffer is out
  const TuneOutcome out = tune_suite(tiny(1, 4), quiet_options(), settings);
  for (const Case& c : out.report.cases) {
    ASSERT_TRUE(c.best) << c.problem.key();
    for (const Result& r : c.results) {
      if (r.impl == c.best->impl) {
        EXPECT_EQ(r.workspace_bytes, 0u) << c.problem.key();
      }
    }
  }
  const TuningDb stored = read_tuning_db(db);  // a named copy: the loop outlives a temporary
  for (const TuningEntry& e : stored.sections[0].entries) {
    EXPECT_EQ(e.results.size(), tiny_impl_count()) << e.problem.key();
  }
}

// `--retune --impl X` measures X again; the other candidates' results stay in the entry.
TEST(Tune, RetuningOneImplementationMergesItIntoTheFullEntry) {
  const std::string db = temp_path("retune_one.json");
  const Suite suite = tiny(1, 4);
  ASSERT_EQ(tune_suite(suite, quiet_options(), {db, {}, false}).measured, 2);
  RunOptions one = quiet_options();
  one.impls = {"im2col_gemm.batched"};
  EXPECT_EQ(tune_suite(suite, one, {db, {}, true}).measured, 2);
  const TuningDb stored = read_tuning_db(db);
  ASSERT_EQ(stored.entry_count(), 2u);
  for (const TuningEntry& e : stored.sections.at(0).entries) {
    EXPECT_EQ(e.candidates.size(), tiny_impl_count()) << e.problem.key();
    EXPECT_EQ(e.results.size(), tiny_impl_count()) << e.problem.key();
    ASSERT_TRUE(e.best) << e.problem.key();
    // The best is chosen again over the merged results, sorted fastest first: the fastest, or
    // the runner-up of a tie within noise that ranks better (deterministic, less workspace).
    EXPECT_TRUE(std::is_sorted(
        e.results.begin(), e.results.end(),
        [](const TunedResult& a, const TunedResult& b) { return a.median_ms < b.median_ms; }))
        << e.problem.key();
    const std::optional<Best> again = choose_best(results_of(e));
    ASSERT_TRUE(again) << e.problem.key();
    EXPECT_EQ(e.best->impl, again->impl) << e.problem.key();
    if (!e.best->tie) {
      EXPECT_EQ(e.best->impl, e.results.front().impl) << e.problem.key();
    }
  }
  // The entry still covers the full set: nothing is measured for it.
  EXPECT_EQ(tune_suite(suite, quiet_options(), {db, {}, false}).measured, 0);
}

// Another tuner replaces the file just after this one's write released the lock: the version
// this tuner keeps must be the one it wrote (taken under the lock), so that it sees the change
// and reads the other tuner's entries instead of measuring those cases again.
TEST(Tune, AWriteByAnotherTunerRightAfterOursIsSeenAndNotMeasuredAgain) {
  const std::string db = temp_path("interloper.json");
  const std::string replacement = temp_path("interloper_other.json");
  const Suite suite = tiny(2, 40);
  std::vector<TuningEntry> all;
  for (const CaseSpec& c : expand_cases(suite, quiet_options())) all.push_back(made_up_entry(c));
  ASSERT_EQ(all.size(), 4u);
  merge_into_file(replacement, machine_fingerprint(threads()), all);
  {
    std::lock_guard<std::mutex> guard(interloper().mutex);
    interloper().path = db;
    interloper().replacement = replacement;
    interloper().armed = true;
    interloper().fired = 0;
  }
  const TuneOutcome out = tune_suite(suite, quiet_options(), {db, {}, false});
  {
    std::lock_guard<std::mutex> guard(interloper().mutex);
    interloper().armed = false;
    ASSERT_EQ(interloper().fired, 1) << "the other tuner never wrote";
  }
  EXPECT_EQ(out.measured, 1);
  EXPECT_EQ(out.from_database, 3);
}

// --- bad files -------------------------------------------------------------------------------

// `convbp tune` refuses the file (exit 2, untouched); a host application's Autotuner must go on:
// it sets the file aside, byte for byte, and starts an empty database.
TEST(Tune, ACorruptOrForeignDatabaseIsAnErrorForTuneAndSetAsideByTheAutotuner) {
  const std::string suite = write_file("suite.json", tiny_suite("t", 1, 4));
  TuningDb valid;
  valid.put({{"convbp", "x"}}, sample_entry());
  nlohmann::json bad = to_json(valid);
  bad["sections"][0]["entries"][0]["pass"] = "forward";
  struct Case {
    std::string name, text, message;
  } cases[] = {
      {"truncated.json", R"({"schema": "convbp.tuning/1", "sections": [)", "malformed JSON"},
      {"empty.json", "", "empty file"},
      {"report.json", R"({"schema": "convbp.report/1", "cases": []})",
       "$.schema: expected \"convbp.tuning/1\""},
      {"bad_field.json", bad.dump(1), "$.sections[0].entries[0].pass: expected"},
  };
  for (const auto& c : cases) {
    const std::string db = write_file(c.name, c.text);
    const Outcome out = convbp("tune " + suite + " --db " + db);
    EXPECT_EQ(out.status, 2) << c.name << "\n" << out.output;
    EXPECT_NE(out.output.find(db + ": "), std::string::npos) << out.output;
    EXPECT_NE(out.output.find(c.message), std::string::npos) << c.name << "\n" << out.output;
    EXPECT_EQ(read_file(db), c.text) << c.name << " was modified";

    AutotunerOptions options;
    options.on_miss = AutotunerOptions::OnMiss::fallback;
    Autotuner tuner(db, options);
    const std::vector<std::string> notes = tuner.notes();
    ASSERT_EQ(notes.size(), 1u) << c.name;
    EXPECT_NE(notes[0].find(c.message), std::string::npos) << notes[0];
    const std::string marker = "set aside as ";
    const std::size_t at = notes[0].find(marker);
    ASSERT_NE(at, std::string::npos) << notes[0];
    const std::string aside =
        notes[0].substr(at + marker.size(), notes[0].find(';', at) - at - marker.size());
    EXPECT_EQ(read_file(aside), c.text) << c.name << ": the set-aside copy differs";
    EXPECT_FALSE(std::filesystem::exists(db)) << c.name;
    EXPECT_EQ(tuner
                  .plan(ConvProblem::parse_key("n1_c2_h5_w5_k2_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1"),
                        Pass::data)
                  .source(),
              PlanSource::fallback);
    std::filesystem::remove(aside);
  }
}

TEST(Autotuner, ADeeplyNestedDatabaseIsSetAsideNotACrash) {
  // 100k levels made the error path's json::dump() recurse until the stack overflowed.
  const std::string db =
      write_file("deep.json", R"({"schema": "convbp.tuning/1", "sections": )" +
                                  std::string(100000, '[') + std::string(100000, ']') + "}");
  Autotuner tuner(db, {});
  const std::vector<std::string> notes = tuner.notes();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find(db + ": $.sections[0][0]"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("nested deeper than 64 levels"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("set aside as " + db + ".unreadable-"), std::string::npos) << notes[0];
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(db).parent_path())) {
    if (entry.path().string().rfind(db + ".unreadable-", 0) == 0) std::filesystem::remove(entry);
  }
}

TEST(Tune, BadOptionsAreUsageErrors) {
  struct Case {
    std::string args, message;
  } cases[] = {
      {"tune smoke", "--db FILE is required"},
      {"tune smoke --db /tmp/x.json --max-workspace lots",
       "--max-workspace: expected a whole number of bytes"},
      {"tune smoke --db /tmp/x.json --max-error -1", "--max-error: expected a number > 0"},
      {"tune smoke --db /nonexistent_dir/x.json", "directory /nonexistent_dir does not exist"},
  };
  for (const auto& c : cases) {
    const Outcome out = convbp(c.args);
    EXPECT_EQ(out.status, 2) << c.args << "\n" << out.output;
    EXPECT_NE(out.output.find(c.message), std::string::npos) << c.args << "\n" << out.output;
  }
  const Outcome help = convbp("tune --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("usage: convbp tune"), std::string::npos);
}

// --- processes -------------------------------------------------------------------------------

pid_t spawn_convbp(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> all = {CONVBP_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return error == 0 ? pid : -1;
}

int wait_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::set<std::string> entry_ids(const TuningDb& db) {
  std::set<std::string> ids;
  for (const TuningSection& s : db.sections) {
    for (const TuningEntry& e : s.entries) ids.insert(e.problem.key() + " " + to_string(e.pass));
  }
  return ids;
}

TEST(Tune, TwoConcurrentTunersOnOneDatabaseKeepEveryEntry) {
  const std::string db = temp_path("concurrent.json");
  const std::string a = write_file("suite_a.json", tiny_suite("a", 4, 4));
  const std::string b = write_file("suite_b.json", tiny_suite("b", 4, 20));
  const std::string log_a = temp_path("a.log"), log_b = temp_path("b.log");
  const pid_t pa = spawn_convbp({"tune", a, "--db", db}, log_a);
  const pid_t pb = spawn_convbp({"tune", b, "--db", db}, log_b);
  ASSERT_GT(pa, 0);
  ASSERT_GT(pb, 0);
  EXPECT_EQ(wait_status(pa), 0) << read_file(log_a);
  EXPECT_EQ(wait_status(pb), 0) << read_file(log_b);
  const TuningDb merged = read_tuning_db(db);
  ASSERT_EQ(merged.sections.size(), 1u);
  std::set<std::string> expected;
  for (const std::string& file : {a, b}) {
    for (const CaseSpec& c : expand_cases(load_suite(file), {})) {
      expected.insert(c.problem.key() + " " + to_string(c.pass));
    }
  }
  EXPECT_EQ(expected.size(), 16u);
  EXPECT_EQ(entry_ids(merged), expected) << read_file(log_a) << read_file(log_b);
}

TEST(Tune, SigintMidRunKeepsEveryFinishedEntryAndMarksTheReportIncomplete) {
  const std::string db = temp_path("interrupted.json");
  const std::string report = temp_path("interrupted_report.json");
  // Enough cases (each a few tenths of a second) that the interrupt lands mid-run.
  const std::string suite = write_file("long.json", tiny_suite("long", 12, 4, 5));
  const std::string log = temp_path("interrupted.log");
  const pid_t pid = spawn_convbp({"tune", suite, "--db", db, "-o", report}, log);
  ASSERT_GT(pid, 0);
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  std::size_t seen = 0;
  while (Clock::now() < deadline) {
    if (fs::exists(db)) {
      seen = read_tuning_db(db).entry_count();
      if (seen > 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(seen, 0u) << "no entry appeared\n" << read_file(log);
  kill(pid, SIGINT);
  EXPECT_EQ(wait_status(pid), 130) << read_file(log);
  const TuningDb kept = read_tuning_db(db);
  EXPECT_GE(kept.entry_count(), seen);
  EXPECT_LT(kept.entry_count(), 24u) << "the interrupt came too late to test anything";
  for (const TuningEntry& e : kept.sections.at(0).entries) {
    EXPECT_EQ(e.candidates.size(), tiny_impl_count()) << e.problem.key();  // finished cases only
    EXPECT_TRUE(e.best) << e.problem.key();
  }
  EXPECT_FALSE(read_report(report).complete);
  EXPECT_NE(read_file(log).find("interrupted"), std::string::npos) << read_file(log);
  // A second run measures only what is missing.
  const Outcome rest = convbp("tune " + suite + " --db " + db + " --reps 1");
  EXPECT_EQ(rest.status, 0) << rest.output;
  EXPECT_NE(rest.output.find(std::to_string(24 - kept.entry_count()) + " measured, " +
                             std::to_string(kept.entry_count()) + " from the database"),
            std::string::npos)
      << rest.output;
  EXPECT_EQ(read_tuning_db(db).entry_count(), 24u);
}

// --- the run-time API ------------------------------------------------------------------------

double max_rel_vs_reference(const ConvProblem& p, const std::vector<float>& dx,
                            const std::vector<float>& dy, const std::vector<float>& w) {
  std::vector<double> ref(p.x_elems());
  reference_backward_data(p, dy.data(), w.data(), ref.data());
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::abs(dx[i] - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return diff / scale;
}

TEST(Autotuner, AMissIsTunedAndSavedAndTheNextTunerHitsTheDatabase) {
  const std::string db = temp_path("api.json");
  const ConvProblem p = ConvProblem::parse_key("n2_c8_h9_w7_k6_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  AutotunerOptions options;
  options.impls = {"im2col_gemm.*"};
  options.tune_seconds = 0.3;
  std::string tuned_impl;
  {
    Autotuner tuner(db, options);
    TunedPlan& plan = tuner.plan(p, Pass::data);
    EXPECT_EQ(plan.source(), PlanSource::tuned) << plan.why();
    EXPECT_EQ(&plan, &tuner.plan(p, Pass::data));  // planned once
    EXPECT_EQ(tuner.tuned_count(), 1);
    tuned_impl = plan.impl();
    std::vector<float> dy(p.y_elems()), w(p.w_elems()), dx(p.x_elems(), -1.0f);
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = float(i % 7) - 3.0f;
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = float(i % 5) * 0.25f - 0.5f;
    Tensors t;
    t.dy = dy.data();
    t.w = w.data();
    t.dx = dx.data();
    plan.run(t);
    EXPECT_LT(max_rel_vs_reference(p, dx, dy, w), 1e-5) << "seed: fixed pattern; " << p.key();
  }
  Autotuner again(db, options);
  TunedPlan& hit = again.plan(p, Pass::data);
  EXPECT_EQ(hit.source(), PlanSource::database) << hit.why();
  EXPECT_EQ(hit.impl(), tuned_impl);
  EXPECT_EQ(hit.why().rfind("database hit: ", 0), 0u) << hit.why();
  EXPECT_EQ(again.tuned_count(), 0);
  // Wider candidates than the entry tried: not a hit.
  AutotunerOptions wider = options;
  wider.impls = {"im2col_gemm.*", "naive"};
  wider.on_miss = AutotunerOptions::OnMiss::fallback;
  Autotuner third(db, wider);
  TunedPlan& miss = third.plan(p, Pass::data);
  EXPECT_EQ(miss.source(), PlanSource::fallback);
  EXPECT_NE(miss.why().find("did not try naive"), std::string::npos) << miss.why();
}

TEST(Autotuner, TheDefaultIsDocumentedAndRespectsConstraints) {
  const ConvProblem p = ConvProblem::parse_key("n1_c4_h6_w6_k4_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  AutotunerOptions options;
  options.on_miss = AutotunerOptions::OnMiss::fallback;
  Autotuner tuner("", options);
  TunedPlan& plan = tuner.plan(p, Pass::weights);
  EXPECT_EQ(plan.source(), PlanSource::fallback);
  EXPECT_EQ(plan.impl(), "im2col_gemm.batched");
  EXPECT_EQ(plan.why(), "default (no database entry, on_miss = fallback)");
  options.constraints.max_workspace_bytes = 0;
  Autotuner strict("", options);
  EXPECT_EQ(strict.plan(p, Pass::weights).workspace_bytes(), 0u);
}

// A glob that selects nothing reaches a host application as the library's SelectionError (an
// invalid_argument), not as the CLI's usage error.
TEST(Autotuner, ACandidateGlobThatMatchesNothingIsASelectionError) {
  AutotunerOptions options;
  options.impls = {"no_such_implementation.*"};
  EXPECT_THROW(Autotuner("", options), SelectionError);
  EXPECT_THROW(Autotuner("", options), std::invalid_argument);
}

TEST(Autotuner, ADatabaseEntryIsChosenUnderTheCallersConstraints) {
  const std::string db = temp_path("constraints.json");
  const ConvProblem p = ConvProblem::parse_key("n1_c4_h6_w6_k4_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  TuningEntry e;
  e.problem = p;
  e.pass = Pass::data;
  e.tuned_as = "handmade";
  e.date = "2024-01-01T00:00:00Z";
  for (const Backward* b : registry()) e.candidates.push_back(b->name());
  // Made-up figures: the point is which one each caller gets.
  e.results = {{"im2col_gemm.batched", 1.0, 0.001, 5, 0, false, 1e-7, ""},
               {"im2col_gemm.per_sample", 2.0, 0.002, 5, 1 << 20, true, 1e-7, ""},
               {"naive", 30.0, 0.03, 5, 0, true, 0.0, ""}};
  merge_into_file(db, machine_fingerprint(threads()), {e});
  auto chosen = [&](const Constraints& c) {
    AutotunerOptions options;
    options.constraints = c;
    options.impls = {"*"};
    Autotuner tuner(db, options);
    TunedPlan& plan = tuner.plan(p, Pass::data);
    EXPECT_EQ(plan.source(), PlanSource::database) << plan.why();
    return plan.impl();
  };
  EXPECT_EQ(chosen({}), "im2col_gemm.batched");
  Constraints det;
  det.deterministic_only = true;
  EXPECT_EQ(chosen(det), "im2col_gemm.per_sample");
  det.max_workspace_bytes = 1024;
  EXPECT_EQ(chosen(det), "naive");
  // Nothing in the entry qualifies: the entry's answer stands (no re-tuning), the default runs.
  AutotunerOptions options;
  options.impls = {"im2col_gemm.*"};
  options.constraints = det;
  Autotuner tuner(db, options);
  TunedPlan& plan = tuner.plan(p, Pass::data);
  EXPECT_EQ(plan.source(), PlanSource::fallback) << plan.why();
  EXPECT_EQ(tuner.tuned_count(), 0);
  EXPECT_NE(plan.why().find("database entry: none of the 2 correct implementations meets"),
            std::string::npos)
      << plan.why();
  EXPECT_LE(plan.workspace_bytes(), 1024u);
}

// A timeout under the Autotuner's small on-line budget says nothing permanent: the entry does
// not count the candidate as tried, so `convbp tune` measures it with its full budget; the
// Autotuner itself does not tune the shape again on every start.
TEST(Autotuner, ATimeoutUnderTheOnlineBudgetIsNotStoredAsTried) {
  registered_probe("test.sleepy", 40);
  const std::string db = temp_path("budget.json");
  const ConvProblem p = ConvProblem::parse_key("n2_c8_h9_w7_k6_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  AutotunerOptions options;
  options.impls = {"im2col_gemm.per_sample", "test.sleepy"};
  options.tune_seconds = 0.04;  // 20 ms each: one call of test.sleepy takes 40
  {
    Autotuner tuner(db, options);
    TunedPlan& plan = tuner.plan(p, Pass::data);
    EXPECT_EQ(plan.source(), PlanSource::tuned) << plan.why();
    EXPECT_EQ(plan.impl(), "im2col_gemm.per_sample") << plan.why();
  }
  {
    Autotuner again(db, options);
    EXPECT_EQ(again.plan(p, Pass::data).source(), PlanSource::database);
    EXPECT_EQ(again.tuned_count(), 0);
  }
  const Suite suite = parse_suite(nlohmann::json::parse(R"({"suite": "budget",
      "impls": ["im2col_gemm.per_sample", "test.sleepy"],
      "timing": {"warmup": 0, "reps": 1, "max_seconds_per_case": 2},
      "layers": [{"name": "l", "n": 2, "c": 8, "h": 9, "w": 7, "k": 6, "r": 3, "pad": 1}]})"),
                                  "budget");
  RunOptions data = quiet_options();
  data.pass = Pass::data;
  EXPECT_EQ(tune_suite(suite, data, {db, {}, false}).measured, 1);
  const TuningDb stored = read_tuning_db(db);  // a named copy: `e` points into it
  const TuningEntry* e = stored.find(machine_fingerprint(threads()), p, Pass::data);
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(std::any_of(e->results.begin(), e->results.end(),
                          [](const TunedResult& r) { return r.impl == "test.sleepy"; }));
}

// Two Autotuners in two threads, each tuning a miss at the same moment: their measurements
// take turns (no call of one runs while the other's runs), both tunings succeed, and the
// shared database keeps both entries.
TEST(Autotuner, TwoTunersInTwoThreadsMeasureOneAfterTheOther) {
  Probe& probe = registered_probe("test.probe", 2);
  const std::string db = temp_path("threads.json");
  AutotunerOptions options;
  options.impls = {"im2col_gemm.per_sample", "test.probe"};
  options.tune_seconds = 0.4;
  const ConvProblem a = ConvProblem::parse_key("n2_c8_h9_w7_k6_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  const ConvProblem b = ConvProblem::parse_key("n2_c9_h9_w7_k6_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  std::atomic<int> ready{0};
  std::string why[2];
  PlanSource source[2] = {PlanSource::fallback, PlanSource::fallback};
  auto tune = [&](int i, const ConvProblem& p) {
    Autotuner tuner(db, options);
    ++ready;
    while (ready < 2) std::this_thread::yield();
    TunedPlan& plan = tuner.plan(p, Pass::data);
    why[i] = plan.why();
    source[i] = plan.source();
  };
  std::thread first(tune, 0, a), second(tune, 1, b);
  first.join();
  second.join();
  for (int i : {0, 1}) {
    EXPECT_EQ(source[i], PlanSource::tuned) << why[i];
    EXPECT_EQ(why[i].find("no correct"), std::string::npos) << why[i];
  }
  EXPECT_GT(probe.calls, 4);
  EXPECT_EQ(probe.most_at_once, 1);
  const TuningDb stored = read_tuning_db(db);
  for (const ConvProblem& p : {a, b}) {
    const TuningEntry* e = stored.find(machine_fingerprint(threads()), p, Pass::data);
    ASSERT_NE(e, nullptr) << p.key() << "\n" << why[0] << "\n" << why[1] << "\n" << read_file(db);
    EXPECT_EQ(e->results.size(), 2u) << p.key();
  }
}

// --- Google Benchmark's process state ----------------------------------------------------------

class RunNames : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) names.push_back(run.benchmark_name());
  }
  std::vector<std::string> names;
};

// An application with its own Google Benchmark benchmarks and its own --benchmark_filter: a
// measurement neither runs nor deletes them, and is not filtered away.
TEST(Timing, TheApplicationsBenchmarksAndFilterAreLeftAlone) {
  int app_runs = 0;
  benchmark::RegisterBenchmark("app_benchmark", [&](benchmark::State& state) {
    for (auto _ : state) ++app_runs;
  })->Iterations(1);
  const std::string filter = benchmark::GetBenchmarkFilter();
  benchmark::SetBenchmarkFilter("app_benchmark");  // as the application's --benchmark_filter
  TimingSettings timing;
  timing.warmup = 0;
  timing.reps = 3;
  timing.min_rep_seconds = 0;
  int calls = 0;
  TimeStats t;
  std::string error;
  try {
    t = measure(
        "convbp_probe", [&] { return double(++calls % 3 + 1); }, timing);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const int app_runs_during_measure = app_runs;
  RunNames names;
  benchmark::RunSpecifiedBenchmarks(&names);  // the application's own run, afterwards
  benchmark::SetBenchmarkFilter(filter);
  benchmark::ClearRegisteredBenchmarks();
  EXPECT_EQ(error, "");
  EXPECT_EQ(app_runs_during_measure, 0);
  EXPECT_EQ(t.reps, 3);
  EXPECT_EQ(calls, 4);               // one untimed call sizes the repetitions
  EXPECT_NEAR(t.median, 2.0, 1e-9);  // self-timed calls of 3, 1 and 2 ms
  EXPECT_EQ(names.names, std::vector<std::string>{"app_benchmark/iterations:1"});
  EXPECT_EQ(app_runs, 1);
}

}  // namespace
}  // namespace convbp
