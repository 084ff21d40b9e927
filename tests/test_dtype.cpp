// Data types and layouts: rounding to bf16 and fp16, suites' dtype and layout lists, naive in
// every dtype and layout against the fp64 reference, the per-dtype error model (it admits a
// correct bf16/fp16 result and rejects one accumulated in bf16/fp16), fp16 overflow named, and
// --dump writing each dtype's arrays.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "autotuner.h"
#include "config.h"
#include "data.h"
#include "dtype.h"
#include "layout.h"
#include "npy.h"
#include "runner.h"
#include "validate.h"

namespace convbp {
namespace {

constexpr std::uint64_t kSeed = 11;

TEST(Dtype, Bfloat16RoundsToNearestEven) {
  EXPECT_EQ(to_float(to_bfloat16(1.0f)), 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
  EXPECT_EQ(to_float(to_bfloat16(1.0f + 0x1p-8f)), 1.0f);
  EXPECT_EQ(to_float(to_bfloat16(1.0f + 0x1p-8f + 0x1p-16f)), 1.0f + 0x1p-7f);
  EXPECT_EQ(to_float(to_bfloat16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);  // tie, up to even
  EXPECT_EQ(to_float(to_bfloat16(-3.0f)), -3.0f);
  EXPECT_TRUE(std::isnan(to_float(to_bfloat16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Dtype, Float16RoundsToNearestEvenAndOverflowsToInf) {
  EXPECT_EQ(to_float(to_float16(1.0f)), 1.0f);
  EXPECT_EQ(to_float(to_float16(1.0f + 0x1p-11f)), 1.0f);  // tie to even
  EXPECT_EQ(to_float(to_float16(1.0f + 3 * 0x1p-11f)), 1.0f + 0x1p-9f);
  EXPECT_EQ(to_float(to_float16(65504.0f)), 65504.0f);
  EXPECT_EQ(to_float(to_float16(65519.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(to_float(to_float16(65520.0f))));
  EXPECT_FALSE(fits_float16(65520.0));
  EXPECT_TRUE(fits_float16(-65504.0));
  EXPECT_EQ(to_float(to_float16(0x1p-24f)), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(to_float(to_float16(0x1p-26f)), 0.0f);
  EXPECT_EQ(to_float(to_float16(-0.3f)), -0.300048828125f);
  // Every fp16 value converts back to itself.
  for (std::uint32_t bits = 0; bits < 0x7c00; ++bits) {
    const float16 h{std::uint16_t(bits)};
    ASSERT_EQ(to_float16(to_float(h)).bits, h.bits) << bits;
  }
}

TEST(Layout, NhwcStoresChannelsLastAndIndicesNameTheLogicalElement) {
  ConvProblem pr{.n = 2, .c = 3, .h = 4, .w = 5, .k = 6, .r = 3, .s = 2};
  pr.layout = Layout::nhwc;
  EXPECT_EQ(stored_shape(pr, TensorKind::x), (std::vector<std::int64_t>{2, 4, 5, 3}));
  EXPECT_EQ(stored_shape(pr, TensorKind::w), (std::vector<std::int64_t>{6, 3, 2, 3}));
  // x[1, 2, 3, 4] (n, c, h, w) lives at ((1*4 + 3)*5 + 4)*3 + 2 in NHWC.
  const std::int64_t logical = ((1 * 3 + 2) * 4 + 3) * 5 + 4;
  const std::int64_t stored = ((1 * 4 + 3) * 5 + 4) * 3 + 2;
  EXPECT_EQ(stored_index(pr, TensorKind::x, logical), stored);
  EXPECT_EQ(logical_index_string(pr, TensorKind::x, stored), "[1,2,3,4]");
}

TEST(Suite, DtypesAndLayoutsDefaultToF32NchwAndExpandEveryLayer) {
  const auto base = nlohmann::json::parse(R"({"suite": "t", "passes": ["data"],
      "layers": [{"name": "a", "c": 4, "h": 5, "w": 5, "k": 4, "r": 3, "s": 3}]})");
  const Suite plain = parse_suite(base, "t.json");
  EXPECT_EQ(plain.dtypes, std::vector<DType>{DType::f32});
  EXPECT_EQ(plain.layouts, std::vector<Layout>{Layout::nchw});
  const auto cases_plain = expand_cases(plain, RunOptions{});
  ASSERT_EQ(cases_plain.size(), 1u);
  EXPECT_EQ(cases_plain[0].name, "t:a");
  EXPECT_EQ(cases_plain[0].problem.key().find("f32"), std::string::npos);

  auto doc = base;
  doc["dtypes"] = {"f32", "bf16"};
  doc["layouts"] = {"nchw", "nhwc"};
  const auto cases = expand_cases(parse_suite(doc, "t.json"), RunOptions{});
  ASSERT_EQ(cases.size(), 4u);
  EXPECT_EQ(cases[0].name, "t:a");
  EXPECT_EQ(cases[1].name, "t:a.f32_nhwc");
  EXPECT_EQ(cases[3].name, "t:a.bf16_nhwc");
  EXPECT_EQ(cases[3].problem.dtype, DType::bf16);
  EXPECT_EQ(cases[3].problem.layout, Layout::nhwc);
  EXPECT_NE(cases[3].problem.key().find("_bf16_nhwc"), std::string::npos);

  // --problem: the key's dtype and layout, whatever the suite lists.
  RunOptions one;
  one.problem = cases[3].problem;
  const auto from_key = expand_cases(parse_suite(doc, "t.json"), one);
  ASSERT_EQ(from_key.size(), 1u);
  EXPECT_EQ(from_key[0].problem, cases[3].problem);
}

TEST(Suite, BadDtypesAndLayoutsNameThePathAndValue) {
  const auto base = nlohmann::json::parse(R"({"suite": "t",
      "layers": [{"name": "a", "c": 4, "h": 5, "w": 5, "k": 4, "r": 3, "s": 3}]})");
  const std::pair<const char*, const char*> bad[] = {
      {R"({"dtypes": ["fp32"]})", "dtypes[0]"},
      {R"({"dtypes": []})", "dtypes"},
      {R"({"dtypes": "bf16"})", "dtypes"},
      {R"({"layouts": ["chwn"]})", "layouts[0]"},
      {R"({"layouts": ["nhwc", "nhwc"]})", "layouts[1]"}};
  for (const auto& [patch, path] : bad) {
    auto doc = base;
    doc.update(nlohmann::json::parse(patch));
    try {
      parse_suite(doc, "t.json");
      ADD_FAILURE() << patch << " accepted";
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(std::string("t.json: ") + path + ":"), std::string::npos) << what;
    }
  }
}

const Backward& naive() { return *find_backward("naive"); }

Case validate_case(const ConvProblem& pr, Pass pass, const std::vector<const Backward*>& impls,
                   const std::string& dump_dir = "") {
  RunOptions options;
  options.validate_only = true;
  options.seed = kSeed;
  options.dump_dir = dump_dir;
  return run_case({pr.key(), pr, pass, 1}, impls, TimingSettings{}, options, 0);
}

// Odd, non-square, grouped, strided: a layout bug cannot hide behind symmetry.
ConvProblem odd_shape() {
  return ConvProblem{.n = 2,
                     .c = 6,
                     .h = 7,
                     .w = 9,
                     .k = 4,
                     .r = 3,
                     .s = 2,
                     .stride_h = 2,
                     .stride_w = 1,
                     .pad_top = 1,
                     .pad_left = 0,
                     .pad_bottom = 2,
                     .pad_right = 1,
                     .groups = 2};
}

TEST(Naive, EveryDtypeAndLayoutMatchesTheReferenceAndNhwcHoldsTheNchwValues) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      ConvProblem nchw = odd_shape();
      nchw.dtype = dtype;
      ConvProblem nhwc = nchw;
      nhwc.layout = Layout::nhwc;
      for (const ConvProblem& pr : {nchw, nhwc}) {
        const Case c = validate_case(pr, pass, {&naive()});
        ASSERT_EQ(c.results.size(), 1u);
        EXPECT_EQ(c.results[0].status, Status::ok)
            << c.results[0].why << "; seed " << kSeed << " problem " << pr.key();
      }
      // The same logical inputs in both layouts; the outputs must be the same values, moved.
      CaseData a(nchw, pass, kSeed), b(nhwc, pass, kSeed);
      naive().plan(nchw, pass)->run(a.tensors(), nullptr);
      naive().plan(nhwc, pass)->run(b.tensors(), nullptr);
      const TensorKind kind = pass == Pass::data ? TensorKind::x : TensorKind::w;
      const Buffer& out_a = pass == Pass::data ? a.dx : a.dw;
      const Buffer& out_b = pass == Pass::data ? b.dx : b.dw;
      EXPECT_EQ(to_logical(nchw, kind, out_a), to_logical(nhwc, kind, out_b))
          << to_string(pass) << " seed " << kSeed << " problem " << nhwc.key();
      // Inputs are the dtype's values (rounded when generated).
      const Buffer& in = b.dy;
      for (std::size_t i = 0; i < in.size(); ++i) {
        ASSERT_EQ(in.at(i), round_to(dtype, in.at(i))) << i;
      }
    }
  }
}

// Direct summation over the definition (data pass only, NCHW, groups 1, stride and dilation
// 1), accumulating in `Acc`'s precision: float for a correct low-precision implementation, the
// dtype itself for the deliberately bad one. The result is rounded to the problem's dtype.
template <DType D>
class DirectLowPrecision final : public Backward {
 public:
  DirectLowPrecision(std::string name, bool accumulate_in_dtype)
      : name_(std::move(name)), in_dtype_(accumulate_in_dtype) {}
  std::string name() const override { return name_; }
  Support supports(const ConvProblem& pr, Pass pass) const override {
    if (pr.dtype != D || pr.layout != Layout::nchw || pass != Pass::data || pr.groups != 1 ||
        pr.stride_h != 1 || pr.stride_w != 1 || pr.dilation_h != 1 || pr.dilation_w != 1) {
      return Support::no("test implementation: one dtype, NCHW data pass, plain shapes only");
    }
    return Support::yes();
  }
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass) const override {
    return std::make_unique<P>(pr, in_dtype_);
  }

 private:
  using T = element_t<D>;
  static T round(float v) {
    if constexpr (D == DType::bf16) return to_bfloat16(v);
    if constexpr (D == DType::f16) return to_float16(v);
    if constexpr (D == DType::f32) return v;
  }
  class P final : public Plan {
   public:
    P(const ConvProblem& pr, bool in_dtype) : pr_(pr), in_dtype_(in_dtype) {}
    void run(const Tensors& t, void*) override {
      const ConvProblem& pr = pr_;
      const std::int64_t P_ = pr.p(), Q = pr.q();
      for (std::int64_t n = 0; n < pr.n; ++n)
        for (std::int64_t c = 0; c < pr.c; ++c)
          for (std::int64_t h = 0; h < pr.h; ++h)
            for (std::int64_t w = 0; w < pr.w; ++w) {
              float acc = 0;
              for (std::int64_t k = 0; k < pr.k; ++k)
                for (std::int64_t r = 0; r < pr.r; ++r)
                  for (std::int64_t s = 0; s < pr.s; ++s) {
                    const std::int64_t p = h + pr.pad_top - r, q = w + pr.pad_left - s;
                    if (p < 0 || p >= P_ || q < 0 || q >= Q) continue;
                    const float dy = to_float(t.dy_as<T>()[((n * pr.k + k) * P_ + p) * Q + q]);
                    const float wv = to_float(t.w_as<T>()[((k * pr.c + c) * pr.r + r) * pr.s + s]);
                    acc += dy * wv;
                    if (in_dtype_) acc = to_float(round(acc));  // the defect
                  }
              t.dx_as<T>()[((n * pr.c + c) * pr.h + h) * pr.w + w] = round(acc);
            }
    }

   private:
    ConvProblem pr_;
    bool in_dtype_;
  };
  std::string name_;
  bool in_dtype_;
};

const Backward& registered(std::unique_ptr<Backward> b) {
  const std::string name = b->name();
  if (!find_backward(name)) add_backward(std::move(b));
  return *find_backward(name);
}

template <DType D>
void expect_model_admits_fp32_accumulation_and_rejects_dtype_accumulation(const char* tag) {
  const Backward& good = registered(std::make_unique<DirectLowPrecision<D>>(
      std::string("test.") + tag + ".fp32_accumulation", false));
  const Backward& bad = registered(std::make_unique<DirectLowPrecision<D>>(
      std::string("test.") + tag + ".dtype_accumulation", true));
  // dx sums k*r*s = 576 products: long enough that rounding every partial sum shows.
  ConvProblem pr{.n = 2, .c = 4, .h = 10, .w = 11, .k = 64, .r = 3, .s = 3};
  pr.pad_top = pr.pad_left = pr.pad_bottom = pr.pad_right = 1;
  pr.dtype = D;
  for (std::uint64_t seed : {kSeed, kSeed + 1, kSeed + 2}) {
    RunOptions options;
    options.validate_only = true;
    options.seed = seed;
    const Case c =
        run_case({pr.key(), pr, Pass::data, 1}, {&good, &bad}, TimingSettings{}, options, 0);
    ASSERT_EQ(c.results.size(), 2u);
    const Result& g = c.results[0];
    const Result& b = c.results[1];
    EXPECT_EQ(g.status, Status::ok) << g.why << "; seed " << seed << " problem " << pr.key();
    EXPECT_EQ(b.status, Status::incorrect)
        << b.impl << " passed; seed " << seed << " problem " << pr.key();
    ASSERT_TRUE(g.error && b.error);
    ::testing::Test::RecordProperty(
        std::string(tag) + ".seed" + std::to_string(seed),
        "fp32 accumulation max_rel " + std::to_string(g.error->max_rel) + ", " + tag +
            " accumulation max_rel " + std::to_string(b.error->max_rel) + ", tolerance " +
            std::to_string(g.error->tolerance));
    // The margins, so that the test says how discriminating the model is.
    EXPECT_LT(g.error->max_rel, g.error->tolerance) << "seed " << seed;
    EXPECT_GT(b.error->max_rel, 1.5 * b.error->tolerance) << "seed " << seed;
  }
}

TEST(DtypeErrorModel, Bf16AdmitsFp32AccumulationAndRejectsBf16Accumulation) {
  expect_model_admits_fp32_accumulation_and_rejects_dtype_accumulation<DType::bf16>("bf16");
}

TEST(DtypeErrorModel, Fp16AdmitsFp32AccumulationAndRejectsFp16Accumulation) {
  expect_model_admits_fp32_accumulation_and_rejects_dtype_accumulation<DType::f16>("f16");
}

TEST(DtypeErrorModel, ToleranceAddsTheDtypesOneOutputRounding) {
  const double f32 = tolerance_for(576, 1.0);
  EXPECT_EQ(tolerance_for(576, 1.0, DType::f32), f32);
  EXPECT_NEAR(tolerance_for(576, 1.0, DType::bf16), f32 + 0x1p-8 * (1 + f32), 1e-15);
  EXPECT_NEAR(tolerance_for(576, 1.0, DType::f16), f32 + 0x1p-11 * (1 + f32), 1e-15);
}

TEST(DtypeErrorModel, AnInfWhereTheReferenceIsFiniteIsAnOverflowNamingTheElement) {
  const std::vector<double> ref = {1.0, 2.0, 70000.0, 3.0};
  const std::vector<double> out = {1.0, 2.0, std::numeric_limits<double>::infinity(), 3.0};
  const ErrorStats e = compare(out, ref, 1e-3, "dx", {1, 1, 2, 2});
  EXPECT_FALSE(e.ok());
  EXPECT_NE(e.failure.find("dx: overflow to Inf at [0,0,1,0] (reference 70000)"), std::string::npos)
      << e.failure;
}

// Every registered implementation, on every dtype and layout: validated against the fp64
// reference, or declined with a reason in words (a library's bf16 entry on a CPU without the
// instructions, an f32-only kernel). Never an error, never incorrect.
TEST(EveryImplementation, MatchesTheReferenceOrDeclinesEveryDtypeAndLayoutWithAReason) {
  std::vector<const Backward*> impls;
  for (const Backward* b : registry()) {
    // Opt-in searches (cudnn.search.*) have tests of their own (test_cudnn.cpp).
    if (b->name().rfind("test.", 0) != 0 && !b->opt_in()) impls.push_back(b);
  }
  ConvProblem base{.n = 2, .c = 8, .h = 9, .w = 7, .k = 8, .r = 3, .s = 3};
  base.pad_top = base.pad_left = base.pad_bottom = base.pad_right = 1;
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    for (Layout layout : {Layout::nchw, Layout::nhwc}) {
      ConvProblem pr = base;
      pr.dtype = dtype;
      pr.layout = layout;
      for (Pass pass : {Pass::data, Pass::weights}) {
        const Case c = validate_case(pr, pass, impls);
        for (const Result& r : c.results) {
          const bool ok = r.status == Status::ok;
          const bool declined = r.status == Status::unsupported && !r.why.empty();
          EXPECT_TRUE(ok || declined)
              << r.impl << " " << to_string(pass) << ": " << to_string(r.status) << " (" << r.why
              << "); seed " << kSeed << " problem " << pr.key();
        }
      }
    }
  }
}

TEST(Autotuner, PlansABf16NhwcProblemAndRefusesTensorsOfAnotherDtype) {
  AutotunerOptions options;
  options.on_miss = AutotunerOptions::OnMiss::fallback;
  Autotuner tuner("", options);
  ConvProblem pr = odd_shape();
  pr.dtype = DType::bf16;
  pr.layout = Layout::nhwc;
  TunedPlan& plan = tuner.plan(pr, Pass::data);
  EXPECT_EQ(plan.problem().key(), pr.key());
  CaseData data(pr, Pass::data, kSeed);
  Tensors f32_tensors = data.tensors();
  f32_tensors.dtype = DType::f32;
  EXPECT_THROW(plan.run(f32_tensors), std::invalid_argument);
  plan.run(data.tensors());
  // The plan's output is the reference rounded to bf16, in NHWC.
  CaseData expected(pr, Pass::data, kSeed);
  naive().plan(pr, Pass::data)->run(expected.tensors(), nullptr);
  EXPECT_EQ(data.dx.first_difference(expected.dx), -1)
      << plan.impl() << "; seed " << kSeed << " problem " << pr.key();
}

TEST(Dump, ArraysAreInTheRealDtypeAndLayoutAndIndexJsonSaysSo) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("convbp_dump_dtype_" + std::to_string(getpid()));
  const std::pair<DType, const char*> kinds[] = {
      {DType::f32, "<f4"}, {DType::bf16, "<u2"}, {DType::f16, "<f2"}};
  for (const auto& [dtype, descr] : kinds) {
    std::filesystem::remove_all(dir);
    ConvProblem pr = odd_shape();
    pr.dtype = dtype;
    pr.layout = Layout::nhwc;
    const Case c = validate_case(pr, Pass::weights, {&naive()}, dir.string());
    ASSERT_EQ(c.results.at(0).status, Status::ok) << c.results[0].why;
    std::ifstream in(dir / "index.json");
    const auto index = nlohmann::json::parse(in);
    const auto& entry = index["cases"][0];
    EXPECT_EQ(entry["dtype"], to_string(dtype));
    EXPECT_EQ(entry["layout"], "nhwc");
    EXPECT_EQ(entry.contains("bf16_stored_as"), dtype == DType::bf16);
    const std::filesystem::path sub = dir / entry["dir"].get<std::string>();
    std::vector<std::int64_t> shape;
    EXPECT_EQ(read_npy_descr((sub / "x.npy").string(), &shape), descr);
    EXPECT_EQ(shape, stored_shape(pr, TensorKind::x));
    EXPECT_EQ(read_npy_descr((sub / "naive.dw.npy").string(), &shape), descr);
    EXPECT_EQ(shape, stored_shape(pr, TensorKind::w));
    EXPECT_EQ(read_npy_descr((sub / "reference.dw.npy").string(), &shape), "<f8");
    EXPECT_EQ(shape, stored_shape(pr, TensorKind::w));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace convbp
