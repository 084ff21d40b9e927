#include <gtest/gtest.h>

#include "backward.h"
#include "problem.h"

namespace convbp {
namespace {

ConvProblem odd_problem() {
  return ConvProblem{.n = 3,
                     .c = 6,
                     .h = 17,
                     .w = 9,
                     .k = 4,
                     .r = 2,
                     .s = 5,
                     .stride_h = 2,
                     .stride_w = 1,
                     .pad_top = 1,
                     .pad_left = 0,
                     .pad_bottom = 2,
                     .pad_right = 1,
                     .dilation_h = 1,
                     .dilation_w = 2,
                     .groups = 2};
}

TEST(Problem, OutputSizeFollowsTheFormulaWithAsymmetricPaddingAndDilation) {
  const ConvProblem pr = odd_problem();
  // p = (17 + 1 + 2 - 2) / 2 + 1 = 10; q = (9 + 0 + 1 - 9) / 1 + 1 = 2 (dilated s = 9).
  EXPECT_EQ(pr.p(), 10);
  EXPECT_EQ(pr.q(), 2);
  EXPECT_EQ(pr.dilated_s(), 9);
  EXPECT_DOUBLE_EQ(pr.flops(), 2.0 * 3 * 4 * 10 * 2 * (6 / 2) * 2 * 5);
  EXPECT_EQ(pr.w_elems(), 4 * 3 * 2 * 5);
}

TEST(Problem, KeyHasTheDocumentedSpelling) {
  ConvProblem pr{.n = 8,
                 .c = 64,
                 .h = 56,
                 .w = 56,
                 .k = 64,
                 .r = 3,
                 .s = 3,
                 .pad_top = 1,
                 .pad_left = 1,
                 .pad_bottom = 1,
                 .pad_right = 1};
  EXPECT_EQ(pr.key(), "n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
}

TEST(Problem, KeyRoundTripsForEveryField) {
  const ConvProblem pr = odd_problem();
  EXPECT_EQ(ConvProblem::parse_key(pr.key()), pr) << pr.key();
  // Every field distinct, so a swapped field cannot round-trip by accident.
  ConvProblem all{.n = 2,
                  .c = 30,
                  .h = 40,
                  .w = 41,
                  .k = 12,
                  .r = 3,
                  .s = 4,
                  .stride_h = 3,
                  .stride_w = 2,
                  .pad_top = 5,
                  .pad_left = 6,
                  .pad_bottom = 7,
                  .pad_right = 8,
                  .dilation_h = 2,
                  .dilation_w = 3,
                  .groups = 6};
  EXPECT_EQ(ConvProblem::parse_key(all.key()), all) << all.key();
}

TEST(Problem, DtypeAndLayoutRoundTripThroughTheKeyAndF32NchwKeepsTheOldKey) {
  ConvProblem pr = odd_problem();
  const std::string old_key = pr.key();
  EXPECT_EQ(old_key.find("f32"), std::string::npos) << old_key;
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    for (Layout layout : {Layout::nchw, Layout::nhwc}) {
      pr.dtype = dtype;
      pr.layout = layout;
      const std::string key = pr.key();
      EXPECT_EQ(ConvProblem::parse_key(key), pr) << key;
      if (dtype == DType::f32 && layout == Layout::nchw) {
        EXPECT_EQ(key, old_key);
      } else {
        EXPECT_EQ(key, old_key + "_" + to_string(dtype) + "_" + to_string(layout));
      }
    }
  }
  // The explicit default suffix reads as the old key.
  const ConvProblem explicit_default = ConvProblem::parse_key(old_key + "_f32_nchw");
  EXPECT_EQ(explicit_default.key(), old_key);
  EXPECT_EQ(
      ConvProblem::parse_key("n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1_bf16_nhwc").dtype,
      DType::bf16);
}

TEST(Problem, BadDtypeOrLayoutInAKeyIsNamed) {
  const std::string base = "n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1";
  for (const auto& [suffix, named] :
       {std::pair{"_fp32_nchw", "'fp32'"}, {"_bf16_chwn", "'chwn'"}, {"_bf16", "expected 11"}}) {
    try {
      ConvProblem::parse_key(base + suffix);
      ADD_FAILURE() << base + suffix << " parsed";
    } catch (const InvalidProblem& e) {
      EXPECT_NE(std::string(e.what()).find(named), std::string::npos) << e.what();
    }
  }
}

TEST(Problem, MalformedKeysAreRejectedWithTheOffendingField) {
  const char* bad[] = {"",
                       "n8_c64",
                       "n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1_extra",
                       "n8_c64_h56_w56_k64_r3_s3_st1_pad1x1x1x1_dil1x1_g1",
                       "n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1_dil1x1_g1",
                       "x8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1",
                       "n8_c6a_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1",
                       "n-8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1"};
  for (const char* key : bad) {
    EXPECT_THROW(ConvProblem::parse_key(key), InvalidProblem) << key;
  }
  try {
    ConvProblem::parse_key("n8_c64_h56_w56_k64_r3_s3_st1_pad1x1x1x1_dil1x1_g1");
  } catch (const InvalidProblem& e) {
    EXPECT_NE(std::string(e.what()).find("'st1'"), std::string::npos) << e.what();
  }
}

TEST(Problem, ParsedKeysAreValidated) {
  EXPECT_THROW(ConvProblem::parse_key("n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g3"),
               InvalidProblem);
}

// Each impossible shape gets a message naming the problem.
struct BadShape {
  const char* what;
  ConvProblem problem;
  const char* message;
};

TEST(Problem, ImpossibleShapesAreRejectedWithAReason) {
  const BadShape cases[] = {
      {"zero batch", {.n = 0}, "n must be >= 1"},
      {"negative channels", {.c = -3}, "c must be >= 1"},
      {"zero kernel", {.h = 4, .w = 4, .r = 0}, "r must be >= 1"},
      {"c not divisible", {.c = 6, .k = 4, .groups = 4}, "c=6 is not divisible by groups=4"},
      {"k not divisible", {.c = 4, .k = 6, .groups = 4}, "k=6 is not divisible by groups=4"},
      {"stride 0", {.stride_h = 0}, "stride must be >= 1"},
      {"dilation 0", {.dilation_w = 0}, "dilation must be >= 1"},
      {"negative pad", {.pad_left = -1}, "padding must be >= 0"},
      {"kernel too tall",
       {.h = 4, .w = 8, .r = 3, .s = 3, .dilation_h = 2},
       "dilated kernel height 5 exceeds padded input height 4"},
      {"kernel too wide",
       {.h = 8, .w = 2, .r = 1, .s = 3, .pad_left = 0},
       "dilated kernel width 3 exceeds padded input width 2"},
      {"byte count overflow",
       {.n = std::int64_t{1} << 30, .c = std::int64_t{1} << 30, .h = 1 << 20, .w = 4},
       "overflow"},
      {"over memory", {.n = 1 << 20, .c = 1 << 10, .h = 1 << 10, .w = 1}, "GiB limit"},
  };
  for (const BadShape& bad : cases) {
    try {
      bad.problem.validate();
      ADD_FAILURE() << bad.what << ": accepted " << bad.problem.key();
    } catch (const InvalidProblem& e) {
      EXPECT_NE(std::string(e.what()).find(bad.message), std::string::npos)
          << bad.what << ": message was: " << e.what();
    }
  }
}

TEST(Problem, AFieldBeyond32BitsIsRejectedBeforeAnyProductWraps) {
  // (r - 1) * dilation_h is 2^64 here: it wrapped to a dilated height of 1 and was accepted.
  try {
    ConvProblem::parse_key("n1_c1_h1_w1_k1_r4294967297_s1_st1x1_pad0x0x0x0_dil4294967296x1_g1");
    ADD_FAILURE() << "accepted";
  } catch (const InvalidProblem& e) {
    EXPECT_NE(std::string(e.what()).find("r=4294967297 is too large (at most 2147483647)"),
              std::string::npos)
        << e.what();
  }
  const BadShape cases[] = {
      {"huge padding", {.pad_bottom = std::int64_t{1} << 62}, "pad_bottom=4611686018427387904"},
      {"huge stride", {.stride_w = std::int64_t{1} << 31}, "stride_w=2147483648 is too large"},
      {"largest sizes, product overflows",
       {.n = kMaxDim, .c = kMaxDim, .h = kMaxDim, .w = kMaxDim},
       "x is too large: its byte count overflows 64 bits"},
      {"largest kernel and dilation",
       {.h = 8, .r = kMaxDim, .dilation_h = kMaxDim},
       "dilated kernel height 4611686011984936963 exceeds padded input height 8"},
  };
  for (const BadShape& bad : cases) {
    try {
      bad.problem.validate();
      ADD_FAILURE() << bad.what << ": accepted " << bad.problem.key();
    } catch (const InvalidProblem& e) {
      EXPECT_NE(std::string(e.what()).find(bad.message), std::string::npos)
          << bad.what << ": message was: " << e.what();
    }
  }
}

TEST(Problem, AShapeTooBigForA32BitGemmIsDeclinedByIm2colWithAReason) {
  // Valid (x is 8 GiB), but p*q = 2^31 exceeds OpenBLAS's int sizes.
  const ConvProblem wide{.h = 2, .w = std::int64_t{1} << 30};
  ASSERT_NO_THROW(wide.validate());
  // (c/g)*r*s = 2^31 likewise.
  const ConvProblem long_kernel{
      .h = 2, .w = std::int64_t{1} << 30, .r = 2, .s = std::int64_t{1} << 30};
  ASSERT_NO_THROW(long_kernel.validate());
  for (const char* name : {"im2col_gemm.per_sample", "im2col_gemm.batched"}) {
    const Backward* b = find_backward(name);
    ASSERT_NE(b, nullptr) << name;
    for (const ConvProblem& pr : {wide, long_kernel}) {
      for (Pass pass : {Pass::data, Pass::weights}) {
        const Support s = b->supports(pr, pass);
        EXPECT_FALSE(s.ok) << name << " " << pr.key();
        EXPECT_NE(s.why.find("OpenBLAS's 32-bit matrix size"), std::string::npos) << s.why;
      }
    }
    EXPECT_TRUE(
        b->supports({.n = 2, .c = 4, .h = 8, .w = 8, .k = 4, .r = 3, .s = 3}, Pass::data).ok);
  }
}

TEST(Problem, PaddingMakesAKernelLargerThanTheImageValid) {
  ConvProblem pr{
      .h = 2, .w = 2, .r = 3, .s = 3, .pad_top = 1, .pad_left = 0, .pad_bottom = 0, .pad_right = 1};
  EXPECT_NO_THROW(pr.validate());
  EXPECT_EQ(pr.p(), 1);
  EXPECT_EQ(pr.q(), 1);
}

TEST(Problem, AccumulationLengthCountsTheTapsBehindOneOutput) {
  const ConvProblem pr = odd_problem();
  EXPECT_EQ(pr.accumulation_length(Pass::weights), 3 * 10 * 2);
  // k/g = 2 channels, ceil(2/2) x ceil(5/1) taps.
  EXPECT_EQ(pr.accumulation_length(Pass::data), 2 * 1 * 5);
}

TEST(Problem, PassNamesParseBack) {
  for (Pass pass : {Pass::data, Pass::weights}) EXPECT_EQ(parse_pass(to_string(pass)), pass);
  EXPECT_FALSE(parse_pass("dx").has_value());
}

}  // namespace
}  // namespace convbp
