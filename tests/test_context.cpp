// What a run records about the machine it ran on: the OpenBLAS core (which one runs, who chose
// it, and that convbp never leaves a lesser one when the user did not choose), and the default
// thread count shared by the CLI and the Autotuner.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "autotuner.h"
#include "blas_core.h"
#include "context.h"
#include "run_binary.h"

namespace convbp {
namespace {

namespace fs = std::filesystem;

using test::Outcome;

// Runs the convbp binary with `env` (VAR=value or -u VAR words) in front of it.
Outcome run_convbp(const std::string& env, const std::string& args) {
  return test::run_convbp(args, env);
}

constexpr const char* kSmall = "--problem n1_c2_h5_w5_k2_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1";
constexpr const char* kNoCoreChoice = "-u OPENBLAS_CORETYPE -u CONVBP_OPENBLAS_DETECTED";

// Each test writes a report of its own: ctest runs the tests of this file in parallel processes,
// and a shared path let one test read another's report.
nlohmann::json report_context(const std::string& env) {
  const fs::path dir = fs::path(::testing::TempDir()) / "context";
  fs::create_directories(dir);
  static int calls = 0;
  const std::string report =
      (dir / (std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
              std::to_string(++calls) + ".json"))
          .string();
  fs::remove(report);
  const Outcome out = run_convbp(
      env, std::string("run ") + kSmall + " --impl im2col_gemm.batched --reps 1 -q -o " + report);
  EXPECT_EQ(out.status, 0) << env << "\n" << out.output;
  std::ifstream in(report);
  if (!in) return {};
  return nlohmann::json::parse(in)["context"];
}

TEST(BlasCore, LevelsOrderTheCoresByTheirWidestInstructions) {
  EXPECT_EQ(blas_core_level("Prescott"), 1);
  EXPECT_EQ(blas_core_level("sandybridge"), 2);  // case-insensitive, as OpenBLAS reads it
  EXPECT_EQ(blas_core_level("Haswell"), blas_core_level("Zen"));
  EXPECT_LT(blas_core_level("Haswell"), blas_core_level("SkylakeX"));
  EXPECT_LT(blas_core_level("SkylakeX"), blas_core_level("Cooperlake"));
  EXPECT_EQ(blas_core_level("NoSuchCore"), 0);
  EXPECT_GT(blas_core_level(best_blas_core_for_cpu()), 0) << best_blas_core_for_cpu();
}

// On any CPU: left to itself, the CLI runs a core at least as good as the best this CPU
// supports, and says who chose it. (On a CPU newer than OpenBLAS, that is convbp, and the
// report names what OpenBLAS had detected; on one OpenBLAS knows, it is OpenBLAS.)
TEST(BlasCore, TheCliNeverRunsALesserCoreThanTheCpuSupportsUnlessTheUserChoseIt) {
  const nlohmann::json context = report_context(kNoCoreChoice);
  ASSERT_TRUE(context.contains("openblas_core")) << context.dump();
  const nlohmann::json& core = context["openblas_core"];
  const std::string running = core["running"], best = core["best_for_cpu"];
  const std::string chosen_by = core["chosen_by"], detected = core["detected"];
  EXPECT_EQ(best, best_blas_core_for_cpu());
  EXPECT_GE(blas_core_level(running), blas_core_level(best)) << core.dump();
  EXPECT_EQ(context["libraries"]["openblas_core"], running) << "the fingerprint's core";
  if (chosen_by == "convbp") {
    EXPECT_LT(blas_core_level(detected), blas_core_level(best)) << core.dump();
    EXPECT_NE(core["note"].get<std::string>().find("OpenBLAS had detected " + detected),
              std::string::npos)
        << core.dump();
  } else {
    EXPECT_EQ(chosen_by, "openblas") << core.dump();
    EXPECT_EQ(detected, running) << core.dump();
  }
  const Outcome list = run_convbp(kNoCoreChoice, "list");
  EXPECT_EQ(list.output.rfind("OpenBLAS core: " + running + " (", 0), 0u) << list.output;
}

TEST(BlasCore, AUsersOpenblasCoretypeAlwaysWins) {
  const nlohmann::json context =
      report_context("-u CONVBP_OPENBLAS_DETECTED OPENBLAS_CORETYPE=Prescott");
  ASSERT_TRUE(context.contains("openblas_core")) << context.dump();
  EXPECT_EQ(context["openblas_core"]["running"], "Prescott") << context.dump();
  EXPECT_EQ(context["openblas_core"]["chosen_by"], "user") << context.dump();
  const Outcome list = run_convbp("OPENBLAS_CORETYPE=Prescott", "list");
  EXPECT_NE(list.output.find("OpenBLAS core: Prescott (set by the environment's "
                             "OPENBLAS_CORETYPE=Prescott"),
            std::string::npos)
      << list.output;
}

// A host application cannot be re-executed: the first Autotuner warns once when OpenBLAS runs a
// lesser core than the CPU supports, and never otherwise. Counted in a fresh process (the warning
// is once per process, and another test may have constructed an Autotuner already).
TEST(BlasCoreDeathTest, TheAutotunerWarnsOnceAboutALesserCoreAndOnlyThen) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const BlasCore& core = blas_core();
  const int expected = core.chosen_by == "openblas" && core.lesser ? 1 : 0;
  const std::string warning = "OpenBLAS runs its " + core.running +
                              " kernels on a CPU that can "
                              "run " +
                              core.best + "'s";
  auto count_warnings = [&] {
    ::testing::internal::CaptureStderr();
    { Autotuner first(""); }
    { Autotuner second(""); }
    const std::string err = ::testing::internal::GetCapturedStderr();
    int count = 0;
    for (std::size_t at = err.find(warning); at != std::string::npos;
         at = err.find(warning, at + 1)) {
      ++count;
    }
    std::_Exit(count);
  };
  EXPECT_EXIT(count_warnings(), ::testing::ExitedWithCode(expected), "")
      << "expected " << expected << " warning(s): " << warning;
}

// Entries tuned by other code must not answer for this code: the fingerprint carries the
// build-time hash of the sources (cmake/source_hash.cmake; the ctest
// source_hash_changes_with_any_source proves the hash follows every edit).
TEST(Fingerprint, HoldsTheBuildTimeHashOfTheSources) {
  const nlohmann::json fingerprint = machine_fingerprint(1);
  ASSERT_TRUE(fingerprint.contains("sources")) << fingerprint.dump();
  const std::string sources = fingerprint["sources"];
  EXPECT_EQ(sources, convbp_source_hash());
  EXPECT_EQ(sources.size(), 16u) << sources;
  EXPECT_EQ(sources.find_first_not_of("0123456789abcdef"), std::string::npos) << sources;
  const Outcome version = run_convbp("", "--version");
  EXPECT_NE(version.output.find("(sources " + sources + ")"), std::string::npos) << version.output;
}

TEST(Threads, TheCliDefaultIsOmpNumThreadsWhenSetLikeTheAutotuners) {
  EXPECT_EQ(report_context("OMP_NUM_THREADS=1")["threads"], 1);
}

}  // namespace
}  // namespace convbp
