// cuDNN entries. Registration, declines and versions are checked on every machine; numerics
// (through the harness's validation path) and timing only where a CUDA device is present, the
// others skip with the reason ("no CUDA device ...").
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "autotuner.h"
#include "backward.h"
#include "data.h"
#include "run_binary.h"
#include "runner.h"
#include "shapes.h"
#include "typed_buffers.h"

namespace convbp {
namespace {

constexpr std::uint64_t kSeed = 23;

const char* const kLegacy[] = {
    "algo0", "algo1", "algo3", "fft", "fft_tiling", "winograd", "winograd_nonfused"};

// What "cudnn.*" selects: every cuDNN entry but the opt-in searches (tested on their own).
std::vector<const Backward*> cudnn_entries() {
  std::vector<const Backward*> list;
  for (const Backward* b : registry()) {
    if (b->name().rfind("cudnn.", 0) == 0 && !b->opt_in()) list.push_back(b);
  }
  return list;
}

// A few short repetitions: timing is checked for its plumbing, not its figures.
TimingSettings quick_timing(int reps, double max_seconds_per_case) {
  TimingSettings timing;
  timing.reps = reps;
  timing.min_rep_seconds = 0.001;
  timing.max_seconds_per_case = max_seconds_per_case;
  return timing;
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() { old_ ? setenv(name_, old_->c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

const Backward& entry(const std::string& name) {
  const Backward* b = find_backward(name);
  if (!b) throw std::runtime_error(name + " is not registered");
  return *b;
}

// Options that tune one entry briefly; `deterministic`: only configurations that promise the
// same bits every call, for the tests that compare results bit for bit.
AutotunerOptions one_entry(const char* name, bool deterministic = true) {
  AutotunerOptions options;
  options.impls = {name};
  options.tune_seconds = 0.5;
  options.constraints.deterministic_only = deterministic;
  return options;
}

// A pass's six tensors in device memory, the inputs copied from `host` (outputs as cudaMalloc
// left them), for the run-time API on the caller's memory; freed at the end of scope.
class DeviceTensors {
 public:
  DeviceTensors(const ConvProblem& pr, const Tensors& host) {
    const std::size_t f = dtype_size(pr.dtype);
    const std::size_t sizes[6] = {pr.x_elems() * f, pr.w_elems() * f, pr.y_elems() * f,
                                  pr.x_elems() * f, pr.w_elems() * f, pr.b_elems() * f};
    const void* in[3] = {host.x, host.w, host.dy};  // null where the pass has no such input
    for (int i = 0; i < 6; ++i) {
      bytes_[i] = sizes[i];
      if (cudaMalloc(&d_[i], bytes_[i]) != cudaSuccess) throw std::runtime_error("cudaMalloc");
      if (i < 3 && in[i] &&
          cudaMemcpy(d_[i], in[i], bytes_[i], cudaMemcpyHostToDevice) != cudaSuccess) {
        throw std::runtime_error("cudaMemcpy");
      }
    }
    tensors_ = Tensors{d_[0], d_[1], d_[2], d_[3], d_[4], d_[5], pr.dtype, pr.layout};
  }
  ~DeviceTensors() {
    for (void* p : d_) cudaFree(p);
  }
  DeviceTensors(const DeviceTensors&) = delete;
  DeviceTensors& operator=(const DeviceTensors&) = delete;
  const Tensors& tensors() const { return tensors_; }
  // The pass's outputs (dx, or dw and db) copied into `to`.
  void download(Pass pass, const Tensors& to) const {
    const int outs[2] = {pass == Pass::data ? 3 : 4, pass == Pass::data ? -1 : 5};
    void* const dst[6] = {nullptr, nullptr, nullptr, to.dx, to.dw, to.db};
    for (int i : outs) {
      if (i >= 0 && cudaMemcpy(dst[i], d_[i], bytes_[i], cudaMemcpyDeviceToHost) != cudaSuccess) {
        throw std::runtime_error("cudaMemcpy");
      }
    }
  }

 private:
  void* d_[6] = {};
  std::size_t bytes_[6] = {};
  Tensors tensors_;
};

// Whether the device is tests/mock_cuda's host model (whose engines and times are known).
bool on_mock_device() {
  return entry("cudnn.algo1.fp32").device_description().find("mock") != std::string::npos;
}

// The reason every cuDNN entry gives when it cannot run here ("" when it can).
std::string unavailable() {
  const Support s = entry("cudnn.algo1.fp32").available();
  return s.ok ? "" : s.why;
}

#define REQUIRE_CUDA_DEVICE()                                \
  if (const std::string why = unavailable(); !why.empty()) { \
    GTEST_SKIP() << why;                                     \
  }

TEST(Cudnn, RegistersEveryLegacyAlgorithmInEveryPrecision) {
  for (const char* algo : kLegacy) {
    for (const char* precision : {"fp32", "tf32", "fp32acc"}) {
      const std::string name = std::string("cudnn.") + algo + "." + precision;
      EXPECT_NE(find_backward(name), nullptr) << name;
    }
  }
  EXPECT_NE(find_backward("cudnn.engine.fp32"), nullptr);
  EXPECT_NE(find_backward("cudnn.engine.tf32"), nullptr);
  EXPECT_NE(find_backward("cudnn.engine.fp32acc"), nullptr);
  std::set<std::string> names;
  for (const Backward* b : cudnn_entries()) {
    EXPECT_EQ(b->device(), Device::cuda) << b->name();
    EXPECT_TRUE(names.insert(b->name()).second) << "registered twice: " << b->name();
  }
}

// Members of the engine families are named after what they run, and found by that name alone
// (a report's or a tuning database's), on any machine.
TEST(Cudnn, EngineMembersAreFoundByTheirEngineIdAndKnobs) {
  for (const char* name : {"cudnn.engine12.k2=3.k13=1.tf32", "cudnn.engine0.fp32",
                           "cudnn.engine3.k5=-1.fp32", "cudnn.engine7.k1=2.fp32acc"}) {
    const Backward* m = find_backward(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->name(), name);
    EXPECT_EQ(m->device(), Device::cuda);
    EXPECT_EQ(find_backward(name), m) << "one member per name";
  }
  EXPECT_TRUE(stands_for("cudnn.engine.tf32", "cudnn.engine12.k2=3.k13=1.tf32"));
  EXPECT_FALSE(stands_for("cudnn.engine.fp32", "cudnn.engine12.k2=3.k13=1.tf32"));
  EXPECT_TRUE(stands_for("cudnn.engine.fp32acc", "cudnn.engine7.k1=2.fp32acc"));
  EXPECT_FALSE(stands_for("cudnn.engine.tf32", "cudnn.engine7.k1=2.fp32acc"));
  EXPECT_FALSE(stands_for("cudnn.algo1.fp32", "cudnn.engine0.fp32"));
  // One configuration has one name: knobs ascending, each once, plain integers.
  for (const char* name :
       {"cudnn.engine12.k13=1.k2=3.tf32", "cudnn.engine12.k2=3.k2=4.tf32", "cudnn.engine012.fp32",
        "cudnn.engine12.k2=03.fp32", "cudnn.engine12.k2=-0.fp32", "cudnn.engine12.fp16",
        "cudnn.engine12", "cudnn.engine-1.fp32", "cudnn.engine12.k2.fp32", "cudnn.engine.fp32x",
        "cudnn.engine12.k2=3.fp32.fp32"}) {
    EXPECT_EQ(find_backward(name), nullptr) << name;
  }
  const auto selected = select_impls({"cudnn.engine7.k1=2.fp32"}, true);
  ASSERT_EQ(selected.size(), 1u);
  EXPECT_EQ(selected[0]->name(), "cudnn.engine7.k1=2.fp32");
}

TEST(Cudnn, WithoutADeviceEveryEntrySaysNoCudaDevice) {
  if (unavailable().empty()) GTEST_SKIP() << "a CUDA device is present";
  std::vector<const Backward*> entries = cudnn_entries();
  entries.push_back(find_backward("cudnn.engine12.k2=3.k13=1.tf32"));
  for (const Backward* b : entries) {
    const Support s = b->available();
    EXPECT_FALSE(s.ok) << b->name();
    EXPECT_EQ(s.why.rfind("no CUDA device", 0), 0u) << b->name() << ": " << s.why;
  }
}

TEST(Cudnn, WithoutADeviceTheRunnerRecordsUnsupportedWithTheReason) {
  if (unavailable().empty()) GTEST_SKIP() << "a CUDA device is present";
  RunOptions options;
  options.validate_only = true;
  const ConvProblem pr = square(1, 2, 5, 2, 3, 1, 1);
  const Case c =
      run_case({pr.key(), pr, Pass::data, 1}, cudnn_entries(), TimingSettings{}, options, 0);
  ASSERT_EQ(c.results.size(), cudnn_entries().size());
  for (const Result& r : c.results) {
    EXPECT_EQ(r.status, Status::unsupported) << r.impl;
    EXPECT_EQ(r.why.rfind("no CUDA device", 0), 0u) << r.impl << ": " << r.why;
  }
}

// These declines come before any device call, so they hold on every machine.
TEST(Cudnn, AnAlgorithmOfOnePassDeclinesTheOther) {
  const ConvProblem pr = square(1, 4, 6, 4, 3, 1, 1);
  for (const char* precision : {".fp32", ".tf32"}) {
    const Support winograd =
        entry(std::string("cudnn.winograd") + precision).supports(pr, Pass::weights);
    EXPECT_FALSE(winograd.ok);
    EXPECT_NE(winograd.why.find("weights pass"), std::string::npos) << winograd.why;
    const Support algo3 = entry(std::string("cudnn.algo3") + precision).supports(pr, Pass::data);
    EXPECT_FALSE(algo3.ok);
    EXPECT_NE(algo3.why.find("backward-filter"), std::string::npos) << algo3.why;
  }
}

// f32 tensors run in the .fp32 and .tf32 entries, bf16 and f16 ones in .fp32acc; each declines
// the other's problems naming the entry that takes them, before any device call.
TEST(Cudnn, EachPrecisionTakesItsDtypesAndNamesTheEntryForTheOthers) {
  ConvProblem pr = square(1, 4, 6, 4, 3, 1, 1);
  for (DType dtype : {DType::bf16, DType::f16}) {
    pr.dtype = dtype;
    for (const char* name : {"cudnn.algo1.fp32", "cudnn.fft.tf32", "cudnn.engine.fp32",
                             "cudnn.engine12.k2=3.k13=1.tf32"}) {
      const Support s = entry(name).supports(pr, Pass::data);
      EXPECT_FALSE(s.ok) << name << " " << pr.key();
      EXPECT_NE(s.why.find(".fp32acc"), std::string::npos) << name << ": " << s.why;
    }
  }
  pr.dtype = DType::f32;
  pr.layout = Layout::nhwc;
  for (const char* name :
       {"cudnn.algo1.fp32acc", "cudnn.engine.fp32acc", "cudnn.engine7.k1=2.fp32acc"}) {
    const Support s = entry(name).supports(pr, Pass::weights);
    EXPECT_FALSE(s.ok) << name << " " << pr.key();
    EXPECT_NE(s.why.find(".fp32 and"), std::string::npos) << name << ": " << s.why;
  }
}

TEST(Cudnn, LegacyEntriesDeclineAsymmetricPadding) {
  ConvProblem pr = square(1, 4, 6, 4, 3, 1, 1);
  pr.pad_bottom = 0;
  for (const char* algo : kLegacy) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      const Support s = entry(std::string("cudnn.") + algo + ".fp32").supports(pr, pass);
      EXPECT_FALSE(s.ok) << algo;
    }
  }
  const Support s = entry("cudnn.algo1.fp32").supports(pr, Pass::data);
  EXPECT_NE(s.why.find("symmetric padding"), std::string::npos) << s.why;
}

TEST(Cudnn, KnobSearchesAreOptInAndSelectedByFullNameOnly) {
  for (const char* name : {"cudnn.search.fp32", "cudnn.search.tf32", "cudnn.search.fp32acc"}) {
    EXPECT_TRUE(entry(name).opt_in()) << name;
    const auto by_glob = select_impls({"cudnn.*"}, true);
    EXPECT_EQ(std::count(by_glob.begin(), by_glob.end(), &entry(name)), 0) << name;
    const auto by_name = select_impls({name}, true);
    ASSERT_EQ(by_name.size(), 1u) << name;
    EXPECT_EQ(by_name[0], &entry(name));
  }
  try {
    select_impls({"cudnn.search.*"}, true);
    ADD_FAILURE() << "a glob that matches only opt-in entries selected something";
  } catch (const SelectionError& e) {
    EXPECT_NE(std::string(e.what()).find("opt-in cudnn.search.fp32"), std::string::npos)
        << e.what();
  }
}

TEST(Cudnn, ReportsLibraryVersionsWithoutADevice) {
  std::map<std::string, std::string> versions;
  for (const auto& [name, version] : entry("cudnn.algo1.fp32").library_versions()) {
    versions[name] = version;
  }
  EXPECT_EQ(versions["cudnn"].rfind("9.", 0), 0u) << versions["cudnn"];
  EXPECT_FALSE(versions["cuda_runtime"].empty());
  EXPECT_FALSE(versions["cuda_driver"].empty());  // "none" without a driver
}

TEST(Cudnn, Tf32AndTransformsAskForLargerTolerances) {
  EXPECT_EQ(entry("cudnn.algo1.fp32").tolerance_factor(Pass::data), 1.0);
  EXPECT_GT(entry("cudnn.fft.fp32").tolerance_factor(Pass::data), 1.0);
  EXPECT_GT(entry("cudnn.algo1.tf32").tolerance_factor(Pass::data),
            entry("cudnn.fft.fp32").tolerance_factor(Pass::data));
}

// --- on a CUDA device ------------------------------------------------------------------------

std::vector<ConvProblem> device_shapes() {
  std::vector<ConvProblem> shapes = {
      square(2, 8, 9, 8, 3, 1, 1),      // 3x3 (Winograd, FFT)
      square(2, 16, 7, 8, 1, 1, 0),     // 1x1
      square(2, 4, 11, 6, 3, 2, 1),     // strided
      square(2, 8, 8, 12, 3, 1, 1, 4),  // grouped
      square(1, 6, 8, 6, 3, 1, 1, 6),   // depthwise
      square(2, 4, 12, 4, 5, 1, 2),     // 5x5
      square(1, 3, 15, 8, 7, 2, 3),     // stem-like 7x7 stride 2
      square(4, 64, 10, 32, 3, 1, 1),   // a longer accumulation
  };
  shapes.push_back({.n = 1,
                    .c = 4,
                    .h = 9,
                    .w = 8,
                    .k = 4,
                    .r = 3,
                    .s = 3,
                    .pad_top = 2,
                    .pad_left = 2,
                    .pad_bottom = 2,
                    .pad_right = 2,
                    .dilation_h = 2,
                    .dilation_w = 2});
  // Non-square, batch 1, asymmetric padding (legacy entries decline, engines may take it).
  shapes.push_back({.n = 1,
                    .c = 3,
                    .h = 13,
                    .w = 7,
                    .k = 5,
                    .r = 3,
                    .s = 2,
                    .stride_h = 2,
                    .pad_top = 1,
                    .pad_left = 0,
                    .pad_bottom = 2,
                    .pad_right = 1});
  return shapes;
}

TEST(CudnnDevice, EveryEntryMatchesTheReferenceOrDeclinesWithAReason) {
  REQUIRE_CUDA_DEVICE();
  RunOptions options;
  options.validate_only = true;
  options.seed = kSeed;
  std::map<std::string, std::set<std::string>> ran;  // per entry (or family): cases it ran
  std::map<std::string, std::string> declined;       // per entry: which cases, and why
  for (const ConvProblem& pr : device_shapes()) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      const Case c =
          run_case({pr.key(), pr, pass, 1}, cudnn_entries(), TimingSettings{}, options, 0);
      int ok = 0;
      for (const Result& r : c.results) {
        const std::string context = r.impl + " " + to_string(pass) + " seed " +
                                    std::to_string(kSeed) + " problem " + pr.key();
        if (r.status == Status::unsupported) {
          EXPECT_FALSE(r.why.empty()) << context;
          declined[r.impl] += "\n  " + context + ": " + r.why;
          continue;
        }
        EXPECT_EQ(r.status, Status::ok)
            << context << ": " << to_string(r.status) << ": " << r.why << " [" << r.detail << "]";
        if (r.status == Status::ok) {
          ran[r.family.empty() ? r.impl : r.family].insert(pr.key() + to_string(pass));
          ++ok;
        }
      }
      // cuDNN does every symmetric shape in some way: at least one entry must run it. Whether
      // any engine takes asymmetric padding is cuDNN's to say; the run shows it.
      const bool symmetric_padding = pr.pad_top == pr.pad_bottom && pr.pad_left == pr.pad_right;
      if (symmetric_padding) {
        EXPECT_GT(ok, 0) << "no cuDNN entry ran " << to_string(pass) << " " << pr.key();
      }
    }
  }
  // The general-purpose legacy algorithm and some strict-fp32 engine configuration run on both
  // passes of every symmetric shape.
  for (const char* name : {"cudnn.algo1.fp32", "cudnn.engine.fp32"}) {
    EXPECT_GE(ran[name].size(), 2 * (device_shapes().size() - 1)) << name << declined[name];
  }
}

// Engines cuDNN offers where pre- and post-padding differ but computes wrong there (engines 1,
// 18, 20 for dw and 50 for dx: rel_l2 ~1 or NaN on the H200 with cuDNN 9.14) decline those
// shapes with the reason, and only those: the same engines run symmetric padding. The mock
// offers them and computes them wrong there, as measured, so that no decline means a failure.
TEST(CudnnDevice, EnginesThatComputeAsymmetricPaddingWrongDeclineIt) {
  REQUIRE_CUDA_DEVICE();
  // An asymmetric shape of the H200 sweep, where cuDNN offered all four.
  const ConvProblem asymmetric =
      ConvProblem::parse_key("n4_c2_h5_w8_k3_r3_s3_st1x1_pad1x0x0x2_dil1x1_g1");
  const ConvProblem symmetric =
      ConvProblem::parse_key("n4_c2_h5_w8_k3_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  const std::pair<const char*, Pass> wrong[] = {{"cudnn.engine1.fp32", Pass::weights},
                                                {"cudnn.engine18.k11=0.fp32", Pass::weights},
                                                {"cudnn.engine20.fp32", Pass::weights},
                                                {"cudnn.engine50.fp32", Pass::data},
                                                {"cudnn.engine50.tf32", Pass::data}};
  for (const auto& [name, pass] : wrong) {
    const Support s = entry(name).supports(asymmetric, pass);
    EXPECT_FALSE(s.ok) << name << " " << to_string(pass) << " " << asymmetric.key();
    EXPECT_NE(s.why.find("pre- and post-padding differ"), std::string::npos)
        << name << ": " << s.why;
    const Support other = entry(name).supports(symmetric, pass);
    EXPECT_EQ(other.why.find("padding differ"), std::string::npos) << name << ": " << other.why;
  }
  // Through the harness: nothing runs wrong, and the offered ones say why they declined.
  RunOptions options;
  options.validate_only = true;
  options.seed = kSeed;
  int declined = 0;
  for (Pass pass : {Pass::data, Pass::weights}) {
    const Case c = run_case({asymmetric.key(), asymmetric, pass, 1},
                            {&entry("cudnn.engine.fp32"), &entry("cudnn.engine.tf32")},
                            TimingSettings{}, options, 0);
    for (const Result& r : c.results) {
      const std::string context = r.impl + " " + to_string(pass) + " seed " +
                                  std::to_string(kSeed) + " problem " + asymmetric.key();
      EXPECT_NE(r.status, Status::incorrect) << context << ": " << r.why;
      declined += r.why.find("pre- and post-padding differ") != std::string::npos;
    }
  }
  EXPECT_GT(declined, 0) << "no engine known to be wrong was offered on " << asymmetric.key();
}

// What the heuristics offer is built the way a tuning database's answer is, from the member's
// name alone; a configuration that only the heuristics' own descriptor could build says so in
// its detail, and this test lists them.
TEST(CudnnDevice, EveryOfferedConfigurationIsAMemberRebuiltFromItsName) {
  REQUIRE_CUDA_DEVICE();
  for (const ConvProblem& pr : {square(8, 64, 28, 64, 3, 1, 1), square(8, 256, 14, 64, 1, 1, 0)}) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      for (const char* family : {"cudnn.engine.fp32", "cudnn.engine.tf32"}) {
        const std::string context = std::string(family) + " " + to_string(pass) + " " + pr.key();
        const Support s = entry(family).supports(pr, pass);
        ASSERT_TRUE(s.ok) << context << ": " << s.why;
        const std::vector<const Backward*> members = entry(family).members(pr, pass);
        EXPECT_FALSE(members.empty()) << context;
        std::set<std::string> names;
        for (const Backward* m : members) {
          EXPECT_TRUE(names.insert(m->name()).second) << context << ": twice " << m->name();
          EXPECT_EQ(find_backward(m->name()), m) << context;
          EXPECT_TRUE(stands_for(family, m->name())) << context << ": " << m->name();
          const Support ms = m->supports(pr, pass);
          ASSERT_TRUE(ms.ok) << context << ": " << m->name() << ": " << ms.why;
          const std::string detail = m->plan(pr, pass)->detail();
          EXPECT_EQ(detail.find("not rebuilt"), std::string::npos) << m->name() << ": " << detail;
        }
        std::printf("%s: %zu configurations\n", context.c_str(), members.size());
      }
    }
  }
}

TEST(CudnnDevice, RuntimeCompiledConfigurationsCanBeLeftOut) {
  REQUIRE_CUDA_DEVICE();
  // A shape no other test uses: its offer is made under the setting.
  const ConvProblem pr = square(3, 12, 10, 20, 3, 1, 1);
  setenv("CONVBP_CUDNN_RUNTIME_COMPILED", "0", 1);
  for (Pass pass : {Pass::data, Pass::weights}) {
    for (const char* family : {"cudnn.engine.fp32", "cudnn.engine.tf32"}) {
      if (!entry(family).supports(pr, pass).ok) continue;
      for (const Backward* m : entry(family).members(pr, pass)) {
        const std::string detail = m->plan(pr, pass)->detail();
        EXPECT_EQ(detail.find("runtime_compiled"), std::string::npos)
            << m->name() << " " << to_string(pass) << " " << pr.key() << ": " << detail;
      }
    }
  }
  unsetenv("CONVBP_CUDNN_RUNTIME_COMPILED");
}

TEST(CudnnDevice, PlansTimeThemselvesWithCudaEvents) {
  REQUIRE_CUDA_DEVICE();
  const ConvProblem pr = square(2, 8, 9, 8, 3, 1, 1);
  RunOptions options;
  options.seed = kSeed;
  const TimingSettings timing = quick_timing(2, 0.5);
  for (const char* name : {"cudnn.algo1.fp32", "cudnn.engine.fp32"}) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      // A family's first member: cuDNN's first offer.
      const Backward* b = entry(name).members(pr, pass).front();
      const Case c = run_case({pr.key(), pr, pass, 1}, {b}, timing, options, 0);
      const Result& r = c.results.at(0);
      ASSERT_EQ(r.status, Status::ok) << name << " " << r.why;
      ASSERT_TRUE(r.time.has_value());
      EXPECT_GT(r.time->median, 0.0) << name;
      EXPECT_LT(r.time->median, 100.0) << name << ": a tiny problem should take microseconds";
      EXPECT_FALSE(r.detail.empty()) << name;
    }
  }
  EXPECT_TRUE(entry("cudnn.algo1.fp32").plan(pr, Pass::data)->times_itself());
}

// bf16 and f16 (fp32 accumulation) and NHWC: every legacy algorithm and every engine
// configuration offered matches the fp64 reference on the rounded inputs, or declines with a
// reason; algo1 and some engine configuration run every shape in every dtype and layout.
TEST(CudnnDevice, SixteenBitAndNhwcMatchTheReferenceOrDeclineWithAReason) {
  REQUIRE_CUDA_DEVICE();
  std::vector<ConvProblem> shapes = device_shapes();
  shapes.resize(5);  // 3x3, 1x1, strided, grouped, depthwise
  std::map<std::string, int> ran;
  int cases = 0;
  for (ConvProblem pr : shapes) {
    for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
      for (Layout layout : {Layout::nchw, Layout::nhwc}) {
        if (dtype == DType::f32 && layout == Layout::nchw) continue;  // the test above
        pr.dtype = dtype;
        pr.layout = layout;
        const bool sixteen = dtype != DType::f32;
        for (Pass pass : {Pass::data, Pass::weights}) {
          ++cases;
          std::vector<const Backward*> entries;
          for (const char* algo : kLegacy) {
            for (const char* precision : sixteen ? std::vector<const char*>{"fp32acc"}
                                                 : std::vector<const char*>{"fp32", "tf32"}) {
              entries.push_back(&entry(std::string("cudnn.") + algo + "." + precision));
            }
          }
          for (const char* family : sixteen ? std::vector<const char*>{"cudnn.engine.fp32acc"}
                                            : std::vector<const char*>{"cudnn.engine.fp32"}) {
            const Backward& f = entry(family);
            const Support s = f.supports(pr, pass);
            ASSERT_TRUE(s.ok) << family << " " << pr.key() << ": " << s.why;
            for (const Backward* m : f.members(pr, pass)) entries.push_back(m);
          }
          for (const Backward* b : entries) {
            const std::string context = b->name() + " " + to_string(pass) + " seed " +
                                        std::to_string(kSeed) + " problem " + pr.key();
            const Support s = b->supports(pr, pass);
            if (!s.ok) {
              EXPECT_FALSE(s.why.empty()) << context;
              continue;
            }
            const typed::Outcome o = typed::run_and_check(*b, pr, pass, kSeed);
            EXPECT_TRUE(o.error.ok())
                << context << ": " << o.error.failure << " max_rel " << o.error.max_rel
                << " tolerance " << o.error.tolerance << " [" << o.detail << "]";
            if (o.error.ok()) {
              const bool member = b->name().rfind("cudnn.engine", 0) == 0 &&
                                  b->name().rfind("cudnn.engine.", 0) != 0;
              ++ran[member ? std::string("engine members") : b->name()];
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(ran["cudnn.algo1.fp32acc"], 2 * 5 * 2 * 2);  // shapes x passes x dtypes x layouts
  EXPECT_EQ(ran["cudnn.algo1.fp32"], 2 * 5);             // f32 NHWC
  EXPECT_GE(ran["engine members"], cases);
}

// db is a bandwidth-bound reduction beside dw on its own stream: the project's kernels in both
// layouts where the build has them, else f32 on cuBLAS in both layouts and 16-bit NHWC on
// cuBLAS; the legacy call (16-bit NCHW without the kernels) after dw. CONVBP_CUDNN_DB=library picks
// the library forms in any build, and CONVBP_CUDNN_DB=legacy the legacy call for every shape. The
// detail names how and gives what db adds to the pass (the pass less dw alone), its rate alone and,
// beside dw, the pass with db after dw instead, all timed apart from the validated call. Its values
// are checked by the harness's validation (status ok).
TEST(CudnnDevice, DbIsAReductionTimedInsideTheWeightsPass) {
  REQUIRE_CUDA_DEVICE();
  RunOptions options;
  options.seed = kSeed;
  const TimingSettings timing = quick_timing(2, 0.5);
  // dtype, layout, entry, and how the libraries compute db.
  const std::tuple<DType, Layout, const char*, const char*> kinds[] = {
      {DType::f32, Layout::nchw, "cudnn.algo1.fp32", "cuBLAS (cublasSgemv"},
      {DType::f32, Layout::nhwc, "cudnn.algo1.fp32", "cuBLAS (cublasSgemv"},
      {DType::bf16, Layout::nhwc, "cudnn.algo1.fp32acc", "cuBLAS (cublasGemmEx"},
      {DType::f16, Layout::nhwc, "cudnn.algo1.fp32acc", "cuBLAS (cublasGemmEx"},
      {DType::bf16, Layout::nchw, "cudnn.algo1.fp32acc", "cudnnConvolutionBackwardBias"},
      {DType::f16, Layout::nchw, "cudnn.algo1.fp32acc", "cudnnConvolutionBackwardBias"}};
  for (const char* choice : {"", "library", "legacy"}) {
    ScopedEnv db_choice("CONVBP_CUDNN_DB", choice);
    for (const auto& [dtype, layout, name, library] : kinds) {
      ConvProblem pr = square(3, 5, 7, 6, 3, 1, 1);
      pr.dtype = dtype;
      pr.layout = layout;
      const Case c = run_case({pr.key(), pr, Pass::weights, 1}, {&entry(name)}, timing, options, 0);
      const Result& r = c.results.at(0);
      const std::string context = std::string(name) + " CONVBP_CUDNN_DB=" + choice + " seed " +
                                  std::to_string(kSeed) + " problem " + pr.key() + " [" + r.detail +
                                  "]";
      ASSERT_EQ(r.status, Status::ok) << context << " " << r.why;
      const bool kernel = CONVBP_WITH_CUDA_KERNELS && *choice == '\0';
      const std::string how = kernel                            ? "a CUDA kernel ("
                              : std::string(choice) == "legacy" ? "cudnnConvolutionBackwardBias"
                                                                : library;
      const bool beside = how != "cudnnConvolutionBackwardBias";
      const std::size_t at = r.detail.find("db by " + how);
      ASSERT_NE(at, std::string::npos) << context;
      EXPECT_NE(r.detail.find(beside ? ") beside dw: adds " : " after dw: adds ", at),
                std::string::npos)
          << context;
      // "adds A ms to the pass's P ms (S%; dw alone D ms); alone B ms, R GB/s of dy"
      double adds = 0, pass_ms = 0, share = 0, dw_ms = 0, alone = 0, rate = 0;
      ASSERT_EQ(std::sscanf(r.detail.c_str() + r.detail.find(": adds ", at),
                            ": adds %lf ms to the pass's %lf ms (%lf%%; dw alone %lf ms); alone "
                            "%lf ms, %lf GB/s of dy",
                            &adds, &pass_ms, &share, &dw_ms, &alone, &rate),
                6)
          << context;
      EXPECT_GT(pass_ms, 0) << context;
      EXPECT_GT(dw_ms, 0) << context;
      EXPECT_GT(alone, 0) << context;
      EXPECT_NEAR(adds, pass_ms - dw_ms, 1e-3 * pass_ms) << context;
      EXPECT_NEAR(share, 100 * adds / pass_ms, 0.2) << context;
      const double dy_bytes = double(pr.y_elems() * dtype_size(dtype));
      EXPECT_NEAR(rate, dy_bytes / (alone * 1e6), 1e-3 * rate) << context;
      // Beside dw, the pass with db after dw on one stream is timed too, for comparison.
      const std::size_t after = r.detail.find("; the pass with db after dw ", at);
      EXPECT_EQ(after != std::string::npos, beside) << context;
      if (after != std::string::npos) {
        double after_ms = 0;
        EXPECT_EQ(
            std::sscanf(r.detail.c_str() + after, "; the pass with db after dw %lf ms", &after_ms),
            1)
            << context;
        EXPECT_GT(after_ms, 0) << context;
      }
    }
  }
}

// A CONVBP_CUDNN_DB that names no choice, or the kernel in a build without it, is an error of
// the weights pass that names the variable and its value, not a silent fallback.
TEST(CudnnDevice, AnUnknownDbChoiceIsAnErrorNamingTheVariable) {
  REQUIRE_CUDA_DEVICE();
  RunOptions options;
  options.seed = kSeed;
  const ConvProblem pr = square(2, 4, 5, 3, 3, 1, 1);
  std::vector<std::pair<const char*, std::string>> wrong = {
      {"gpu", "CONVBP_CUDNN_DB='gpu': expected kernel, library or legacy"}};
  if (!CONVBP_WITH_CUDA_KERNELS) {
    wrong.emplace_back("kernel", "CONVBP_CUDNN_DB='kernel': this build has no CUDA kernels");
  }
  for (const auto& [value, message] : wrong) {
    ScopedEnv db_choice("CONVBP_CUDNN_DB", value);
    const Case c = run_case({pr.key(), pr, Pass::weights, 1}, {&entry("cudnn.algo1.fp32")},
                            quick_timing(1, 0.1), options, 0);
    const Result& r = c.results.at(0);
    EXPECT_EQ(r.status, Status::error) << value << " problem " << pr.key() << ": " << r.why;
    EXPECT_NE(r.why.find(message), std::string::npos)
        << value << " problem " << pr.key() << ": " << r.why;
  }
}

// Every variable the cuDNN entries read is checked, naming it and its value: a misspelt value
// is never taken for the default ("no" is not 0), nor a number strtod alone would take. Each
// entry answers for the variables it reads: every entry CONVBP_CUDNN_DB (db), the engine
// configurations CONVBP_CUDNN_RUNTIME_COMPILED, the knob search CONVBP_CUDNN_SEARCH_S too.
TEST(Cudnn, EachCudnnVariableIsCheckedNamingItsValue) {
  const char* const kAlgo = "cudnn.algo1.fp32";
  const char* const kEngine = "cudnn.engine.tf32";
  const char* const kMember = "cudnn.engine12.k2=3.fp32";
  const char* const kSearch = "cudnn.search.tf32";
  for (const char* name : {kAlgo, kEngine, kMember, kSearch}) {
    EXPECT_EQ(entry(name).environment_error(), "") << name << ", as the test environment sets them";
  }
  struct Wrong {
    const char* variable;
    const char* value;
    std::string message;
    std::vector<const char*> read_by, not_read_by;
  };
  const std::vector<Wrong> wrong = {
      {"CONVBP_CUDNN_DB",
       "gpu",
       "CONVBP_CUDNN_DB='gpu': expected kernel, library or legacy",
       {kAlgo, kEngine, kMember, kSearch},
       {}},
      {"CONVBP_CUDNN_RUNTIME_COMPILED",
       "no",
       "CONVBP_CUDNN_RUNTIME_COMPILED='no': expected 0 (leave runtime-compiled configurations "
       "out) or 1",
       {kEngine, kMember, kSearch},
       {kAlgo}},
      {"CONVBP_CUDNN_SEARCH_S",
       "0x10",
       "CONVBP_CUDNN_SEARCH_S='0x10': expected a number of seconds in (0, 86400]",
       {kSearch},
       {kAlgo, kEngine, kMember}},
      {"CONVBP_CUDNN_SEARCH_S", " 5", "CONVBP_CUDNN_SEARCH_S=' 5': expected", {kSearch}, {}},
      {"CONVBP_CUDNN_SEARCH_S", "+5", "CONVBP_CUDNN_SEARCH_S='+5': expected", {kSearch}, {}},
      {"CONVBP_CUDNN_SEARCH_S", "nan", "CONVBP_CUDNN_SEARCH_S='nan': expected", {kSearch}, {}},
      {"CONVBP_CUDNN_SEARCH_S", "0", "CONVBP_CUDNN_SEARCH_S='0': expected", {kSearch}, {}},
      {"CONVBP_CUDNN_SEARCH_S", "1e6", "CONVBP_CUDNN_SEARCH_S='1e6': expected", {kSearch}, {}},
  };
  for (const Wrong& w : wrong) {
    ScopedEnv scoped(w.variable, w.value);
    for (const char* name : w.read_by) {
      const std::string error = entry(name).environment_error();
      EXPECT_NE(error.find(w.message), std::string::npos)
          << name << " " << w.variable << "=" << w.value << ": " << error;
    }
    for (const char* name : w.not_read_by) {
      EXPECT_EQ(entry(name).environment_error(), "") << name << " does not read " << w.variable;
    }
  }
  {
    ScopedEnv db("CONVBP_CUDNN_DB", "gpu");
    ScopedEnv budget("CONVBP_CUDNN_SEARCH_S", "ten");
    const std::string error = entry(kSearch).environment_error();
    EXPECT_NE(error.find("CONVBP_CUDNN_DB='gpu'"), std::string::npos) << error;
    EXPECT_NE(error.find("; CONVBP_CUDNN_SEARCH_S='ten'"), std::string::npos)
        << "each bad variable named: " << error;
  }
  for (const auto& [variable, value] :
       std::vector<std::pair<const char*, const char*>>{{"CONVBP_CUDNN_DB", ""},
                                                        {"CONVBP_CUDNN_DB", "library"},
                                                        {"CONVBP_CUDNN_RUNTIME_COMPILED", "0"},
                                                        {"CONVBP_CUDNN_RUNTIME_COMPILED", "1"},
                                                        {"CONVBP_CUDNN_SEARCH_S", "0.5"},
                                                        {"CONVBP_CUDNN_SEARCH_S", "86400"},
                                                        {"CONVBP_CUDNN_SEARCH_S", "2e1"}}) {
    ScopedEnv scoped(variable, value);
    EXPECT_EQ(entry(kSearch).environment_error(), "") << variable << "='" << value << "'";
  }
}

// A run that selects no cuDNN entry is not stopped by a bad cuDNN variable, and keeps its tuning
// fingerprint (the report's libraries record nothing for a bad value): its database entries
// still answer it.
TEST(Cudnn, ABadCudnnVariableLeavesARunWithoutCudnnAsItWas) {
  const std::string db = ::testing::TempDir() + "/bad_cudnn_variable_db.json";
  std::remove(db.c_str());
  const std::string args =
      "tune --db " + db + " --problem n1_c2_h5_w5_k2_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1 --impl naive";
  const test::Outcome first = test::run_convbp(args);
  ASSERT_EQ(first.status, 0) << first.output;
  const test::Outcome second = test::run_convbp(args, "CONVBP_CUDNN_RUNTIME_COMPILED=no");
  EXPECT_EQ(second.status, 0) << second.output;
  EXPECT_EQ(second.output.find("another fingerprint"), std::string::npos) << second.output;
  std::ifstream in(db);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t sections = 0;
  for (auto at = text.find("\"fingerprint\""); at != std::string::npos;
       at = text.find("\"fingerprint\"", at + 1)) {
    ++sections;
  }
  EXPECT_EQ(sections, 1u) << "one fingerprint, one section:\n" << text;
  std::remove(db.c_str());
}

// A bad cuDNN variable stops `convbp run` and `tune` before measuring (status 2, one line naming
// it, no report) and the Autotuner's constructor, where a cuDNN entry would run; a run that
// selects none is not stopped by it.
TEST(CudnnDevice, ABadCudnnVariableIsRefusedBeforeMeasuring) {
  REQUIRE_CUDA_DEVICE();
  const std::string dir = ::testing::TempDir();
  const std::string report = dir + "/bad_env_report.json";
  const std::string problem = " --problem n1_c2_h5_w5_k2_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1";
  std::remove(report.c_str());
  for (const std::string& command : {std::string("run"), "tune --db " + dir + "/bad_env_db.json"}) {
    const std::string args = command + problem + " --impl 'cudnn.algo1.*' -o " + report;
    const test::Outcome out = test::run_convbp(args, "CONVBP_CUDNN_DB=gpu");
    EXPECT_EQ(out.status, 2) << args << "\n" << out.output;
    EXPECT_EQ(out.output,
              "convbp: environment: CONVBP_CUDNN_DB='gpu': expected kernel, library or legacy\n")
        << args;
    EXPECT_FALSE(std::ifstream(report).good()) << args << ": a report was written";
  }
  const test::Outcome cpu_only =
      test::run_convbp("run" + problem + " --impl naive -o " + report, "CONVBP_CUDNN_DB=gpu");
  EXPECT_EQ(cpu_only.status, 0) << cpu_only.output;
  std::remove(report.c_str());

  ScopedEnv scoped("CONVBP_CUDNN_RUNTIME_COMPILED", "off");
  try {
    Autotuner tuner("", one_entry("cudnn.engine.fp32"));
    ADD_FAILURE() << "the Autotuner took CONVBP_CUDNN_RUNTIME_COMPILED=off";
  } catch (const SelectionError& e) {
    EXPECT_NE(std::string(e.what()).find("CONVBP_CUDNN_RUNTIME_COMPILED='off'"), std::string::npos)
        << e.what();
  }
}

// The run-time API on the caller's device memory: run_device() binds the caller's device
// pointers (no copy) and computes what run() computes from host tensors, for a legacy plan and
// an engine configuration (whose variant pack follows the pointers), on two sets of buffers;
// the second time enqueued on a stream of the caller's (run_device_async), waited for there.
TEST(CudnnDevice, RunDeviceComputesOnTheCallersDeviceMemory) {
  REQUIRE_CUDA_DEVICE();
  const ConvProblem pr = square(2, 4, 7, 6, 3, 1, 1);
  for (const char* name : {"cudnn.algo1.fp32", "cudnn.engine.fp32"}) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      Autotuner tuner("", one_entry(name));  // compared bit for bit below
      TunedPlan& plan = tuner.plan(pr, pass);
      const std::string context = plan.impl() + " " + to_string(pass) + " seed " +
                                  std::to_string(kSeed) + " problem " + pr.key();
      ASSERT_EQ(plan.device(), Device::cuda) << context << ": " << plan.why();
      EXPECT_GT(plan.expected_ms(), 0.0) << context;
      CaseData host(pr, pass, kSeed);
      plan.run(host.tensors());
      for (int round = 0; round < 2; ++round) {
        const DeviceTensors device(pr, host.tensors());
        const Tensors& dev = device.tensors();
        if (round == 0) {
          plan.run_device(dev);
        } else {
          cudaStream_t stream = nullptr;
          ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
          plan.run_device_async(dev, stream);
          ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess) << context;
          ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
        }
        CaseData back(pr, pass, kSeed);
        device.download(pass, back.tensors());
        if (pass == Pass::data) {
          EXPECT_EQ(back.dx.first_difference(host.dx), -1) << context << " round " << round;
        } else {
          EXPECT_EQ(back.dw.first_difference(host.dw), -1) << context << " round " << round;
          EXPECT_EQ(back.db.first_difference(host.db), -1) << context << " round " << round;
        }
      }
    }
  }
}

// run() on host tensors is the inputs copied in, the call, the outputs copied out: none of the
// NaN-poisoning of outputs and workspace that upload() does for validation (a memset of a
// workspace that can run to gigabytes, on every call). On the host model, which counts
// cudaMemset calls, for a legacy plan and an engine configuration, both passes; the results
// equal those of a validated call.
TEST(CudnnDevice, RunOnHostTensorsCopiesAndDoesNothingElse) {
  REQUIRE_CUDA_DEVICE();
  const ConvProblem pr = square(2, 4, 7, 6, 3, 1, 1);
  using Count = long (*)();
  const auto memsets = reinterpret_cast<Count>(dlsym(RTLD_DEFAULT, "convbp_mock_memset_calls"));
  ASSERT_EQ(memsets != nullptr, on_mock_device());
  for (const char* name : {"cudnn.algo1.fp32", "cudnn.engine.fp32"}) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      Autotuner tuner("", one_entry(name));  // compared bit for bit below
      TunedPlan& plan = tuner.plan(pr, pass);
      const std::string context = plan.impl() + " " + to_string(pass) + " seed " +
                                  std::to_string(kSeed) + " problem " + pr.key();
      ASSERT_EQ(plan.device(), Device::cuda) << context << ": " << plan.why();
      CaseData validated(pr, pass, kSeed), host(pr, pass, kSeed);
      const Backward& b = entry(plan.impl());
      std::unique_ptr<Plan> checked = b.plan(pr, pass);
      checked->upload(validated.tensors());  // as the harness does: outputs poisoned
      checked->run(validated.tensors(), nullptr);
      checked->download(validated.tensors());
      const long before = memsets ? memsets() : 0;
      plan.run(host.tensors());
      plan.run(host.tensors());
      if (memsets) {
        EXPECT_EQ(memsets() - before, 0) << context << ": cudaMemset calls in run()";
      }
      if (pass == Pass::data) {
        EXPECT_EQ(host.dx.first_difference(validated.dx), -1) << context;
      } else {
        EXPECT_EQ(host.dw.first_difference(validated.dw), -1) << context;
        EXPECT_EQ(host.db.first_difference(validated.db), -1) << context;
      }
    }
  }
}

// Two weights plans (a legacy algorithm and an engine configuration), each run from a thread of
// its own on a stream of its own, at once (run_device_async, 20 calls each), with db by the
// build's default form and by the library's (cuBLAS for f32 NCHW): both compute what run()
// computes, and on the host model every cuDNN call of each lands on its own thread's stream,
// none on the other's or the default one, and each plan's db runs on a stream of its own, its
// cuBLAS calls on a workspace of the plan's own (cuBLAS's condition for bitwise reproducible
// results on concurrent streams). The model makes cudnnSetStream sleep 200 us, so that a thread
// taking the one cuDNN handle between another's setting its stream and enqueueing (no
// lock_handles()) would put that call on the wrong stream. On a GPU, the results are checked;
// the streams and workspaces cannot be seen.
namespace {
void plans_on_two_threads(const char* db_form) {
  constexpr int kCalls = 20;
  const ConvProblem pr = square(2, 4, 7, 6, 3, 1, 1);
  ScopedEnv delay("CONVBP_MOCK_SET_STREAM_DELAY_US", "200");
  ScopedEnv form("CONVBP_CUDNN_DB", db_form);
  using CallsOn = long (*)(cudaStream_t);
  using DbCalls = int (*)(cudaStream_t*, long*, int);
  using WorkspacesOn = int (*)(cudaStream_t, void**, int);
  const auto calls_on =
      reinterpret_cast<CallsOn>(dlsym(RTLD_DEFAULT, "convbp_mock_cudnn_calls_on"));
  const auto db_calls = reinterpret_cast<DbCalls>(dlsym(RTLD_DEFAULT, "convbp_mock_db_calls"));
  const auto workspaces_on =
      reinterpret_cast<WorkspacesOn>(dlsym(RTLD_DEFAULT, "convbp_mock_blas_workspaces_on"));
  ASSERT_EQ(calls_on != nullptr, on_mock_device());
  ASSERT_EQ(workspaces_on != nullptr, on_mock_device());
  const auto db_counts = [&] {
    std::map<cudaStream_t, long> counts;
    cudaStream_t streams[64];
    long n[64];
    const int found = db_calls(streams, n, 64);
    for (int i = 0; i < std::min(found, 64); ++i) counts[streams[i]] = n[i];
    return counts;
  };

  struct Side {
    std::unique_ptr<Autotuner> tuner;
    TunedPlan* plan = nullptr;
    std::unique_ptr<CaseData> host;
    std::unique_ptr<DeviceTensors> device;
    cudaStream_t stream = nullptr;
    std::string context;
  };
  Side sides[2];
  const char* names[2] = {"cudnn.algo1.fp32", "cudnn.engine.fp32"};
  for (int i = 0; i < 2; ++i) {
    Side& side = sides[i];
    side.tuner = std::make_unique<Autotuner>("", one_entry(names[i]));  // bit for bit below
    side.plan = &side.tuner->plan(pr, Pass::weights);
    side.context = side.plan->impl() + " CONVBP_CUDNN_DB=" + db_form + " seed " +
                   std::to_string(kSeed + i) + " problem " + pr.key();
    ASSERT_EQ(side.plan->device(), Device::cuda) << side.context << ": " << side.plan->why();
    side.host = std::make_unique<CaseData>(pr, Pass::weights, kSeed + i);
    side.plan->run(side.host->tensors());  // the reference: run() on host tensors
    side.device = std::make_unique<DeviceTensors>(pr, side.host->tensors());
    ASSERT_EQ(cudaStreamCreateWithFlags(&side.stream, cudaStreamNonBlocking), cudaSuccess);
  }
  const long default_before = calls_on ? calls_on(nullptr) : 0;
  const std::map<cudaStream_t, long> db_before =
      calls_on ? db_counts() : std::map<cudaStream_t, long>{};

  std::string errors[2];
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      Side& side = sides[i];
      try {
        for (int c = 0; c < kCalls; ++c) {
          side.plan->run_device_async(side.device->tensors(), side.stream);
        }
        if (cudaStreamSynchronize(side.stream) != cudaSuccess) errors[i] = "synchronize failed";
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();

  for (int i = 0; i < 2; ++i) {
    Side& side = sides[i];
    EXPECT_EQ(errors[i], "") << side.context;
    CaseData back(pr, Pass::weights, kSeed + i);
    side.device->download(Pass::weights, back.tensors());
    EXPECT_EQ(back.dw.first_difference(side.host->dw), -1) << side.context;
    EXPECT_EQ(back.db.first_difference(side.host->db), -1) << side.context;
    if (calls_on) {
      EXPECT_EQ(calls_on(side.stream), kCalls)
          << side.context << ": cuDNN calls on its thread's stream";
    }
  }
  if (calls_on) {
    EXPECT_EQ(calls_on(nullptr) - default_before, 0) << "cuDNN calls on the default stream";
    // db's calls during the threads, by stream: two streams, neither a caller's nor the default,
    // with the same number of calls (one plan's each).
    std::map<cudaStream_t, long> db_during;
    for (const auto& [stream, n] : db_counts()) {
      const auto was = db_before.find(stream);
      const long added = n - (was == db_before.end() ? 0 : was->second);
      if (added > 0) db_during[stream] = added;
    }
    ASSERT_EQ(db_during.size(), 2u) << "one db stream per plan, CONVBP_CUDNN_DB=" << db_form;
    std::set<void*> workspaces;
    for (const auto& [stream, n] : db_during) {
      EXPECT_TRUE(stream != nullptr && stream != sides[0].stream && stream != sides[1].stream);
      EXPECT_EQ(n % kCalls, 0) << n << " db calls on one stream, CONVBP_CUDNN_DB=" << db_form;
      // cuBLAS's calls (none where db is the kernel): all on one workspace, not the pool.
      void* on[8];
      const int count = workspaces_on(stream, on, 8);
      for (int w = 0; w < std::min(count, 8); ++w) {
        EXPECT_NE(on[w], nullptr) << "a cuBLAS call on the handle's pool, CONVBP_CUDNN_DB="
                                  << db_form;
        workspaces.insert(on[w]);
      }
      EXPECT_LE(count, 1) << "cuBLAS workspaces on one db stream, CONVBP_CUDNN_DB=" << db_form;
    }
    if (std::string(db_form) == "library") {
      EXPECT_EQ(workspaces.size(), 2u) << "one cuBLAS workspace per plan";
    }
  }
  for (Side& side : sides) cudaStreamDestroy(side.stream);
}
}  // namespace

TEST(CudnnDevice, PlansOnTwoThreadsKeepToTheirOwnStreams) {
  REQUIRE_CUDA_DEVICE();
  plans_on_two_threads("");  // the build's default: the kernel where it was built
  plans_on_two_threads("library");
}

// convbp drives one CUDA device per process, the one current when it first used cuDNN. A
// thread whose current device is another gets an error naming both devices, rather than work
// on the wrong device: from run_device() and from run() on host tensors of a plan made on the
// first, and from making a plan. An Autotuner's tuning there declines the cuDNN entries for now
// (its plan is the CPU fallback, and why() says why) and does not store that in the database:
// an Autotuner on the right device then tunes the shape again and gets its cuDNN plan. On the
// host model with CONVBP_MOCK_DEVICES=2; on a GPU machine only where it has two devices.
TEST(CudnnDevice, APlanRefusesAThreadOnAnotherDevice) {
  REQUIRE_CUDA_DEVICE();
  std::optional<ScopedEnv> two;
  if (on_mock_device()) two.emplace("CONVBP_MOCK_DEVICES", "2");
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  if (count < 2) GTEST_SKIP() << "one CUDA device";
  int first = 0;
  ASSERT_EQ(cudaGetDevice(&first), cudaSuccess);
  const int other = first == 0 ? 1 : 0;
  const ConvProblem pr = square(2, 4, 7, 6, 3, 1, 1);
  const ConvProblem untuned = square(2, 4, 7, 5, 3, 1, 1);
  const std::string context = "cudnn.algo1.fp32 data problem " + pr.key();
  const AutotunerOptions options = one_entry("cudnn.algo1.fp32", false);
  Autotuner tuner("", options);
  TunedPlan& plan = tuner.plan(pr, Pass::data);
  ASSERT_EQ(plan.device(), Device::cuda) << context << ": " << plan.why();
  CaseData host(pr, Pass::data, kSeed);
  const DeviceTensors device(pr, host.tensors());
  const Tensors& dev = device.tensors();
  const std::string database = ::testing::TempDir() + "/other_device_tuning.json";
  std::remove(database.c_str());
  std::string errors[4];  // run_device, run, a plan, a tuning (its plan's why())
  std::thread([&] {
    if (cudaSetDevice(other) != cudaSuccess) return;
    const std::function<void()> calls[4] = {
        [&] { plan.run_device(dev); }, [&] { plan.run(host.tensors()); },
        [&] { entry("cudnn.algo1.fp32").plan(pr, Pass::data); },
        [&] {
          Autotuner there(database, options);
          const TunedPlan& p = there.plan(untuned, Pass::data);
          throw std::runtime_error(std::string(to_string(p.device())) + " plan " + p.impl() + ": " +
                                   p.why());
        }};
    for (int i = 0; i < 4; ++i) {
      try {
        calls[i]();
        errors[i] = "no error";
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  }).join();
  const std::string names = "current CUDA device is " + std::to_string(other) +
                            ", but convbp's cuDNN plans are on device " + std::to_string(first);
  const std::string expected[4] = {
      "run_device (" + pr.key() + " data): the calling thread's " + names,
      "run (" + pr.key() + " data): the calling thread's " + names,
      "a cuDNN plan: the calling thread's " + names,
      "cudnn.algo1.fp32: the calling thread's " + names};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NE(errors[i].find(expected[i]), std::string::npos)
        << context << ": expected \"" << expected[i] << "\" in \"" << errors[i] << "\"";
  }
  plan.run_device(dev);  // this thread, on the plan's device: runs
  Autotuner here(database, options);
  TunedPlan& later = here.plan(untuned, Pass::data);
  EXPECT_EQ(later.impl(), "cudnn.algo1.fp32") << untuned.key() << ": " << later.why();
  EXPECT_EQ(later.source(), PlanSource::tuned) << untuned.key() << ": " << later.why();
}

// run_device() refuses, with an error that names the tensor, a pointer the plan's kernels cannot
// use: a missing one, or one not aligned as the plan needs (an engine configuration's tensors
// declare 16 bytes; the legacy API needs the element's size). A misaligned pointer reaching a
// kernel would be a fault that leaves the CUDA context unusable.
TEST(CudnnDevice, RunDeviceRefusesMissingOrMisalignedPointers) {
  REQUIRE_CUDA_DEVICE();
  const ConvProblem pr = square(2, 4, 7, 6, 3, 1, 1);
  const std::tuple<const char*, std::size_t, std::size_t> kinds[] = {{"cudnn.engine.fp32", 4, 16},
                                                                     {"cudnn.algo1.fp32", 2, 4}};
  for (const auto& [name, offset, alignment] : kinds) {
    AutotunerOptions options;
    options.impls = {name};
    options.tune_seconds = 0.5;
    Autotuner tuner("", options);
    TunedPlan& plan = tuner.plan(pr, Pass::weights);
    const std::string context = plan.impl() + " weights problem " + pr.key();
    ASSERT_EQ(plan.device(), Device::cuda) << context << ": " << plan.why();
    const std::size_t f = dtype_size(pr.dtype);
    const std::size_t bytes[4] = {pr.x_elems() * f + 64, pr.y_elems() * f + 64,
                                  pr.w_elems() * f + 64, pr.b_elems() * f + 64};
    void* d[4] = {};
    for (int i = 0; i < 4; ++i) ASSERT_EQ(cudaMalloc(&d[i], bytes[i]), cudaSuccess);
    const auto message = [&](const Tensors& t) -> std::string {
      try {
        plan.run_device(t);
      } catch (const std::invalid_argument& e) {
        return e.what();
      }
      return "";
    };
    Tensors t{d[0], nullptr, d[1], nullptr, d[2], d[3], pr.dtype, pr.layout};
    EXPECT_EQ(message(t), "") << context;
    t.db = nullptr;
    EXPECT_NE(message(t).find("no device pointer for db"), std::string::npos) << context;
    t.db = d[3];
    t.x = static_cast<char*>(d[0]) + offset;
    const std::string misaligned = message(t);
    EXPECT_NE(misaligned.find("x at "), std::string::npos) << context << ": " << misaligned;
    EXPECT_NE(misaligned.find("is not " + std::to_string(alignment) + "-byte aligned"),
              std::string::npos)
        << context << ": " << misaligned;
    for (void* p : d) cudaFree(p);
  }
}

// The knob-space search (cudnn.search.*): its members are configurations the heuristics did
// not offer, each measured in the search and validated by the harness like any other; the
// detail says what the search tried and in how long. On the host model, whose engine 9 is
// never offered and is fastest at one point of its 480-point knob space (modeled time), the
// search must find exactly that point, and it must win the case against every offer.
TEST(CudnnDevice, KnobSearchFindsConfigurationsTheHeuristicsDidNotOffer) {
  REQUIRE_CUDA_DEVICE();
  ScopedEnv modeled("CONVBP_MOCK_MODELED_TIME", "1");
  ScopedEnv budget("CONVBP_CUDNN_SEARCH_S", "4");
  RunOptions options;
  options.seed = kSeed;
  const TimingSettings timing = quick_timing(3, 1);
  // f32 NCHW with the fp32 families, bf16 NHWC with the fp32-accumulating ones; shapes no other
  // test uses, so that each search is fresh.
  ConvProblem bf16 = square(2, 6, 7, 6, 3, 1, 1);
  bf16.dtype = DType::bf16;
  bf16.layout = Layout::nhwc;
  const std::tuple<ConvProblem, const char*, const char*> kinds[] = {
      {square(2, 6, 7, 5, 3, 1, 1), "fp32", "cudnn.engine9.k14=3.k17=4.k37=64.fp32"},
      {bf16, "fp32acc", "cudnn.engine9.k14=3.k17=4.k37=64.fp32acc"}};
  for (const auto& [pr, precision, model_best] : kinds) {
    const std::string family = std::string("cudnn.search.") + precision;
    const std::string heuristics = std::string("cudnn.engine.") + precision;
    for (Pass pass : {Pass::data, Pass::weights}) {
      const std::string context = family + " " + to_string(pass) + " seed " +
                                  std::to_string(kSeed) + " problem " + pr.key();
      const Backward& search = entry(family);
      const Support s = search.supports(pr, pass);
      if (!s.ok && !on_mock_device()) {
        // On a real device the heuristics may well have offered the fastest configuration.
        std::printf("%s: %s\n", context.c_str(), s.why.c_str());
        continue;
      }
      ASSERT_TRUE(s.ok) << context << ": " << s.why;
      const std::vector<const Backward*> found = search.members(pr, pass);
      ASSERT_FALSE(found.empty()) << context;
      EXPECT_LE(found.size(), 4u) << context;
      const std::vector<const Backward*> offered = entry(heuristics).members(pr, pass);
      for (const Backward* m : found) {
        EXPECT_EQ(std::count(offered.begin(), offered.end(), m), 0)
            << context << ": " << m->name() << " was offered by the heuristics";
        EXPECT_TRUE(stands_for(family, m->name())) << context << " " << m->name();
      }
      const std::string detail = found[0]->plan(pr, pass)->detail();
      EXPECT_NE(detail.find("knob search #1: "), std::string::npos) << context << ": " << detail;
      EXPECT_NE(detail.find("configurations tried in"), std::string::npos)
          << context << ": " << detail;

      const Case c =
          run_case({pr.key(), pr, pass, 1}, {&entry(heuristics), &search}, timing, options, 0);
      int from_search = 0;
      for (const Result& r : c.results) {
        if (r.family != family) continue;
        ++from_search;
        // Configurations cuDNN never offered may compute wrong on a real device: the harness
        // rejects them (incorrect), which is the point of validating them. The model's are
        // right.
        if (on_mock_device() || r.status != Status::incorrect) {
          EXPECT_EQ(r.status, Status::ok) << context << " " << r.impl << ": " << r.why;
        }
      }
      EXPECT_EQ(from_search, int(found.size())) << context;
      if (on_mock_device()) {
        // STAGES (14) 3, SPLIT_K_SLC (17) 4, CTA_COUNT (37) 64: the model's fastest point.
        EXPECT_EQ(found[0]->name(), model_best) << context;
        ASSERT_TRUE(c.best.has_value()) << context;
        EXPECT_EQ(c.best->impl, model_best) << context;
      }
    }
  }
}

// The budget holds: a search stops once CONVBP_CUDNN_SEARCH_S is spent and says so; a budget
// that is not a number of seconds is a decline that names the variable and the value.
TEST(CudnnDevice, KnobSearchKeepsToItsBudget) {
  REQUIRE_CUDA_DEVICE();
  ConvProblem pr = square(2, 7, 9, 6, 3, 1, 1);
  {
    ScopedEnv budget("CONVBP_CUDNN_SEARCH_S", "ten");
    const Support s = entry("cudnn.search.tf32").supports(pr, Pass::data);
    EXPECT_FALSE(s.ok);
    EXPECT_NE(s.why.find("CONVBP_CUDNN_SEARCH_S='ten'"), std::string::npos) << s.why;
  }
  // About 10 ms of host work per configuration on the model (its naive loops on this shape):
  // a 0.3 s budget cannot try the 480 points of engine 9's space. On a GPU, more configurations
  // fit, and one build may overrun the budget by its own time.
  pr = square(2, 16, 10, 16, 3, 1, 1);
  ScopedEnv modeled("CONVBP_MOCK_MODELED_TIME", "1");
  ScopedEnv budget("CONVBP_CUDNN_SEARCH_S", "0.3");
  const Backward& search = entry("cudnn.search.fp32");
  const Support s = search.supports(pr, Pass::data);
  // The search's account: in the decline, or in the first member's detail.
  const std::string account =
      s.ok ? search.members(pr, Pass::data).at(0)->plan(pr, Pass::data)->detail() : s.why;
  const std::size_t at = account.find(" s of a 0.3 s budget (");
  ASSERT_NE(at, std::string::npos) << pr.key() << ": " << account;
  const double seconds = std::stod(account.substr(account.rfind(' ', at - 1) + 1));
  EXPECT_LT(seconds, on_mock_device() ? 1.0 : 5.0) << pr.key() << ": " << account;
  if (on_mock_device()) {
    EXPECT_NE(account.find("(the budget spent)"), std::string::npos) << pr.key() << ": " << account;
  }
}

TEST(CudnnDevice, DescribesTheDeviceAndDriver) {
  REQUIRE_CUDA_DEVICE();
  const Backward* b = find_backward("cudnn.algo1.fp32");
  ASSERT_NE(b, nullptr);
  EXPECT_NE(b->device_description().find("driver"), std::string::npos) << b->device_description();
  for (const auto& [name, version] : b->library_versions()) {
    if (name == "cuda_driver") {
      EXPECT_NE(version, "none");
    }
  }
}

}  // namespace
}  // namespace convbp
