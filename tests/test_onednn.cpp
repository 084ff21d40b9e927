// The oneDNN family: every variant against the fp64 reference on odd shapes, the plan contract
// of the two timings (NCHW with reorders in run(); .native with reorders outside it), what
// `supports` says for Winograd, and that convbp's thread setting governs oneDNN.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstring>
#include <regex>
#include <vector>

#include "autotuner.h"
#include "backward.h"
#include "data.h"
#include "naive.h"
#include "runner.h"
#include "shapes.h"
#include "typed_buffers.h"
#include "validate.h"

namespace convbp {
namespace {

constexpr std::uint64_t kSeed = 7;

const char* const kVariants[] = {"onednn.direct",      "onednn.auto",
                                 "onednn.winograd",    "onednn.direct.native",
                                 "onednn.auto.native", "onednn.winograd.native",
                                 "onednn.direct.plain"};

const Backward& get(const char* name) {
  const Backward* b = find_backward(name);
  if (b == nullptr) throw std::runtime_error(std::string(name) + " is not registered");
  return *b;
}

// The harness's own validation of one output set against the fp64 reference.
ErrorStats check(const Backward& b, const ConvProblem& pr, Pass pass, const CaseData& data) {
  const double tol = tolerance_for(pr.accumulation_length(pass), b.tolerance_factor(pass));
  if (pass == Pass::data) {
    std::vector<double> dx(pr.x_elems());
    reference_backward_data(pr, data.dy.data_as<float>(), data.w.data_as<float>(), dx.data());
    return compare(data.dx.floats(), dx, tol, "dx", {pr.n, pr.c, pr.h, pr.w});
  }
  std::vector<double> dw(pr.w_elems()), db(pr.b_elems());
  reference_backward_weights(pr, data.x.data_as<float>(), data.dy.data_as<float>(), dw.data(),
                             db.data());
  return worse(compare(data.dw.floats(), dw, tol, "dw", {pr.k, pr.c_per_group(), pr.r, pr.s}),
               compare(data.db.floats(), db, tol, "db", {pr.k}));
}

std::string where(const char* impl, const ConvProblem& pr, Pass pass) {
  return std::string(impl) + " " + to_string(pass) + " seed " + std::to_string(kSeed) +
         " problem " + pr.key();
}

class OnednnShapes : public ::testing::TestWithParam<std::size_t> {};

// Through the harness loop itself (poison, upload, run, download, validate), as convbp runs it.
// direct and auto must take every shape; Winograd may decline, with oneDNN's reason.
TEST_P(OnednnShapes, EveryVariantMatchesTheReferenceOrDeclinesWithOnednnsReason) {
  const ConvProblem pr = sweep().at(GetParam());
  std::vector<const Backward*> impls;
  for (const char* name : kVariants) impls.push_back(&get(name));
  RunOptions options;
  options.validate_only = true;
  options.seed = kSeed;
  for (Pass pass : {Pass::data, Pass::weights}) {
    const Case c = run_case({pr.key(), pr, pass, 1}, impls, TimingSettings{}, options, 0);
    for (const Result& r : c.results) {
      const std::string context = where(r.impl.c_str(), pr, pass);
      if (r.status == Status::unsupported) {
        EXPECT_NE(r.impl.find("winograd"), std::string::npos) << context << ": " << r.why;
        EXPECT_NE(r.why.find("oneDNN"), std::string::npos) << context << ": " << r.why;
        continue;
      }
      ASSERT_EQ(r.status, Status::ok) << context << ": " << to_string(r.status) << ": " << r.why;
      ASSERT_TRUE(r.error.has_value()) << context;
      EXPECT_LE(r.error->max_rel, r.error->tolerance) << context;
      EXPECT_FALSE(r.detail.empty()) << context;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Onednn, OnednnShapes, ::testing::Range<std::size_t>(0, sweep().size()),
                         [](const auto& info) { return sweep().at(info.param).key(); });

// .native: run() must work on the plan's own buffers only, so after upload() it gets no host
// pointers at all; repeated runs must give the same bits (the harness times repeated runs).
TEST(Onednn, NativeRunNeedsNothingButWhatUploadLeft) {
  const ConvProblem pr = square(2, 16, 8, 24, 3, 1, 1);
  for (const char* name : {"onednn.direct.native", "onednn.auto.native"}) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      const Backward& b = get(name);
      CaseData data(pr, pass, kSeed);
      Tensors host = data.tensors();
      auto plan = b.plan(pr, pass);
      std::vector<std::uint8_t> workspace(plan->workspace_bytes());
      plan->upload(host);
      plan->run(Tensors{}, workspace.data());
      plan->download(host);
      const ErrorStats e = check(b, pr, pass, data);
      EXPECT_TRUE(e.ok()) << where(name, pr, pass) << ": " << e.failure;
      const std::vector<float> first = (pass == Pass::data ? data.dx : data.dw).floats();
      data.poison_outputs();
      for (int i = 0; i < 3; ++i) plan->run(Tensors{}, workspace.data());
      plan->download(host);
      const std::vector<float> again = (pass == Pass::data ? data.dx : data.dw).floats();
      EXPECT_EQ(0, std::memcmp(first.data(), again.data(), first.size() * sizeof(float)))
          << where(name, pr, pass) << ": repeated runs differ bitwise";
    }
  }
}

// NCHW entries: run() reads and writes the host buffers it is given, which may move between
// calls (a framework's tensors do), and needs neither upload() nor download().
TEST(Onednn, NchwRunFollowsTheHostBuffers) {
  const ConvProblem pr = square(2, 16, 8, 24, 3, 1, 1);
  for (const char* name : {"onednn.direct", "onednn.auto"}) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      const Backward& b = get(name);
      auto plan = b.plan(pr, pass);
      std::vector<std::uint8_t> workspace(plan->workspace_bytes());
      for (std::uint64_t seed : {kSeed, kSeed + 1}) {
        CaseData data(pr, pass, seed);  // fresh buffers at new addresses, new values
        plan->run(data.tensors(), workspace.data());
        const ErrorStats e = check(b, pr, pass, data);
        EXPECT_TRUE(e.ok()) << where(name, pr, pass) << " (data seed " << seed
                            << "): " << e.failure;
      }
    }
  }
}

bool has_avx512_core() {
  const std::string versions = get("onednn.direct").library_versions().at(0).second;
  return versions.find("avx512_core") != std::string::npos;
}

// oneDNN 2.6 has Winograd (F(4x4, 3x3)) only on AVX-512 cores, for 3x3 stride-1 undilated,
// ungrouped convolutions; what convbp reports must follow oneDNN, not a list of our own.
TEST(Onednn, WinogradSupportFollowsOnednn) {
  const Backward& wino = get("onednn.winograd");
  const ConvProblem three = square(2, 16, 8, 16, 3, 1, 1);
  for (Pass pass : {Pass::data, Pass::weights}) {
    const Support s = wino.supports(three, pass);
    EXPECT_EQ(s.ok, has_avx512_core()) << where("onednn.winograd", three, pass) << ": " << s.why;
    for (const ConvProblem& pr : {square(2, 16, 8, 16, 1, 1, 0), square(2, 16, 9, 16, 3, 2, 1),
                                  square(2, 16, 8, 16, 3, 1, 1, 16)}) {
      const Support no = wino.supports(pr, pass);
      EXPECT_FALSE(no.ok) << where("onednn.winograd", pr, pass);
      EXPECT_NE(no.why.find("unimplemented"), std::string::npos) << no.why;
      EXPECT_THROW(wino.plan(pr, pass), std::exception) << where("onednn.winograd", pr, pass);
    }
  }
  if (has_avx512_core()) {
    EXPECT_NE(wino.plan(three, Pass::data)->detail().find("wino"), std::string::npos);
  }
}

// oneDNN 2.6.3's Winograd data pass is wrong when top and bottom padding differ: declined, with
// the reason; the weights pass and left/right asymmetry are right and stay supported.
TEST(Onednn, WinogradDataPassWithUnequalTopAndBottomPaddingIsDeclined) {
  if (!has_avx512_core()) GTEST_SKIP() << "oneDNN has no Winograd on this CPU";
  const Backward& wino = get("onednn.winograd");
  const ConvProblem top_only{.n = 2,
                             .c = 16,
                             .h = 10,
                             .w = 10,
                             .k = 16,
                             .r = 3,
                             .s = 3,
                             .pad_top = 1,
                             .pad_left = 1,
                             .pad_bottom = 0,
                             .pad_right = 1};
  const Support data = wino.supports(top_only, Pass::data);
  EXPECT_FALSE(data.ok) << top_only.key();
  EXPECT_NE(data.why.find("top and bottom padding"), std::string::npos) << data.why;
  EXPECT_THROW(wino.plan(top_only, Pass::data), std::runtime_error) << top_only.key();
  EXPECT_TRUE(wino.supports(top_only, Pass::weights).ok) << top_only.key();
  ConvProblem left_only = top_only;
  left_only.pad_bottom = 1;
  left_only.pad_right = 0;
  EXPECT_TRUE(wino.supports(left_only, Pass::data).ok) << left_only.key();
}

TEST(Onednn, DetailNamesOnednnsKernelAndWhatIsTimed) {
  const ConvProblem pr = square(2, 16, 8, 16, 3, 1, 1);
  const std::string nchw = get("onednn.direct").plan(pr, Pass::data)->detail();
  const std::string native = get("onednn.direct.native").plan(pr, Pass::data)->detail();
  EXPECT_NE(nchw.find("reorders timed"), std::string::npos) << nchw;
  EXPECT_NE(native.find("reorders untimed"), std::string::npos) << native;
  // impl_info_str() comes first: "jit:avx2", "jit:avx512_core", "gemm:jit", ...
  EXPECT_TRUE(std::regex_search(nchw, std::regex("^[a-z0-9_:]+;"))) << nchw;
}

TEST(Onednn, LibraryVersionNamesVersionAndIsa) {
  const auto versions = get("onednn.direct").library_versions();
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_EQ(versions[0].first, "onednn");
  EXPECT_TRUE(std::regex_match(versions[0].second, std::regex(R"(\d+\.\d+\.\d+ \([a-z0-9_]+\))")))
      << versions[0].second;
}

// bf16 and NHWC on the same variants as f32 NCHW, against the fp64 reference computed on the
// very inputs the library saw (already rounded to bf16). The outputs are bf16 too: the bound
// adds their rounding (2^-8 of the scale) to the fp32 accumulation bound, which still rejects a
// kernel that sums in bf16 (about sqrt(L) 2^-9, L >= 144 here).
TEST(Onednn, Bf16AndNhwcMatchTheReferenceOnRoundedInputs) {
  ConvProblem probe = square(2, 16, 8, 16, 3, 1, 1);
  probe.dtype = DType::bf16;
  const Support bf16 = get("onednn.direct").supports(probe, Pass::data);
  if (!bf16.ok) {
    // Without AVX-512 oneDNN 2.6.3 has no bf16 convolution: the decline says what is needed.
    EXPECT_NE(bf16.why.find("avx512_core"), std::string::npos) << bf16.why;
  }
  const ConvProblem shapes[] = {square(2, 16, 9, 32, 3, 1, 1), square(3, 24, 11, 16, 3, 2, 1),
                                square(2, 32, 7, 32, 3, 1, 1, 2)};
  for (ConvProblem pr : shapes) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      for (Layout layout : {Layout::nchw, Layout::nhwc}) {
        if (dtype == DType::f32 && layout == Layout::nchw) continue;  // the sweep's case
        if (dtype == DType::bf16 && !bf16.ok) continue;
        pr.dtype = dtype;
        pr.layout = layout;
        for (const char* name :
             {"onednn.direct", "onednn.auto", "onednn.direct.native", "onednn.direct.plain"}) {
          for (Pass pass : {Pass::data, Pass::weights}) {
            const std::string context = where(name, pr, pass);
            const Support s = get(name).supports(pr, pass);
            ASSERT_TRUE(s.ok) << context << ": " << s.why;
            const typed::Outcome o = typed::run_and_check(get(name), pr, pass, kSeed);
            EXPECT_TRUE(o.error.ok()) << context << ": " << o.error.failure << " max_rel "
                                      << o.error.max_rel << " tolerance " << o.error.tolerance;
            // oneDNN's bf16 kernels say so (jit_bf16:...); .plain on NCHW runs its GEMM-based
            // one, x64:gemm:jit, whose name does not.
            if (dtype == DType::bf16 && std::string(name) != "onednn.direct.plain") {
              EXPECT_NE(o.detail.find("bf16"), std::string::npos) << context << ": " << o.detail;
            }
            if (layout == Layout::nhwc && std::string(name) == "onednn.direct") {
              EXPECT_NE(o.detail.find("NHWC in/out"), std::string::npos) << o.detail;
            }
            if (std::string(name) == "onednn.direct.plain") {
              // Made for the caller's activation layouts (oneDNN's plain tags).
              const char* x_layout = layout == Layout::nhwc ? "acdb" : "abcd";
              EXPECT_NE(o.detail.find("activations, weights reordered"), std::string::npos)
                  << o.detail;
              EXPECT_NE(o.detail.find(pass == Pass::data ? std::string("dx:") + x_layout
                                                         : std::string("x:") + x_layout),
                        std::string::npos)
                  << context << ": " << o.detail;
            }
          }
        }
      }
    }
  }
}

// oneDNN 2.6.3 has no f16 convolution on any CPU: every variant declines, saying so and naming
// the ISA that newer oneDNN versions use for it.
TEST(Onednn, F16IsDeclinedNamingTheMissingKernels) {
  ConvProblem pr = square(2, 16, 8, 16, 3, 1, 1);
  pr.dtype = DType::f16;
  for (const char* name : kVariants) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      const Support s = get(name).supports(pr, pass);
      EXPECT_FALSE(s.ok) << where(name, pr, pass);
      EXPECT_NE(s.why.find("no f16 convolution"), std::string::npos) << s.why;
      EXPECT_NE(s.why.find("avx512_core_fp16"), std::string::npos) << s.why;
    }
  }
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// convbp::set_threads (omp_set_num_threads) must bind oneDNN's OpenMP runtime: at one thread the
// process may burn no more CPU time than wall time. (The converse, two threads using two
// cores, cannot be asserted on a shared machine; docs/onednn.md gives the verbose check.)
TEST(Onednn, OneThreadSettingBindsOnednn) {
  const int saved = threads();
  set_threads(1);
  const ConvProblem pr = square(8, 64, 28, 64, 3, 1, 1);
  const Backward& b = get("onednn.direct.native");
  CaseData data(pr, Pass::weights, kSeed);
  auto plan = b.plan(pr, Pass::weights);
  std::vector<std::uint8_t> workspace(plan->workspace_bytes());
  plan->upload(data.tensors());
  // OpenBLAS's worker threads spin for ~2^28 cycles (about 0.13 s here) after the library
  // starts or after its last call before they sleep; that CPU time is not oneDNN's, so the
  // measured window starts once they are asleep.
  const auto warm0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - warm0 < std::chrono::milliseconds(300)) {
    plan->run(Tensors{}, workspace.data());
  }
  const double cpu0 = cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  int runs = 0;
  while (std::chrono::steady_clock::now() - wall0 < std::chrono::milliseconds(300) || runs < 3) {
    plan->run(Tensors{}, workspace.data());
    ++runs;
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  const double cpu = cpu_seconds() - cpu0;
  set_threads(saved);
  EXPECT_LT(cpu, 1.2 * wall) << "cpu " << cpu << " s over " << wall << " s wall, " << runs
                             << " runs, problem " << pr.key();
}

// The run-time API's expected_ms() is what the caller pays: a .native plan's ranking time leaves
// out the reorders between the caller's plain layout and its own, so the Autotuner does not
// offer it (even when it would be the fastest), and a .native plan refuses run_on().
TEST(Onednn, TheAutotunerOffersNoNativePlanWhoseReordersTheRankingLeftOut) {
  const ConvProblem pr = square(2, 8, 9, 8, 3, 1, 1);
  std::unique_ptr<Plan> native = get("onednn.direct.native").plan(pr, Pass::data);
  EXPECT_FALSE(native->runs_on_caller_memory());
  EXPECT_TRUE(get("onednn.direct").plan(pr, Pass::data)->runs_on_caller_memory());
  AutotunerOptions options;
  options.impls = {"onednn.direct.native"};
  options.fallback = {"onednn.direct.native", "im2col_gemm.batched"};
  options.tune_seconds = 0.5;
  Autotuner tuner("", options);
  TunedPlan& plan = tuner.plan(pr, Pass::data);
  EXPECT_EQ(plan.impl(), "im2col_gemm.batched") << plan.why();
  EXPECT_NE(plan.why().find("reorders"), std::string::npos) << plan.why();
  // A CPU plan's run_device() is run() on the caller's host memory.
  CaseData a(pr, Pass::data, kSeed), b(pr, Pass::data, kSeed);
  EXPECT_EQ(plan.device(), Device::cpu);
  plan.run(a.tensors());
  plan.run_device(b.tensors());
  EXPECT_EQ(a.dx.first_difference(b.dx), -1) << "seed " << kSeed << " problem " << pr.key();
}

}  // namespace
}  // namespace convbp
