// Problems in the peers' words (harness/peer_formats.h): benchdnn descriptors, MIOpenDriver
// command lines, suites of such lines, convbp's cases written back as benchdnn lines; and the
// suite fields the model tracer writes (`source` as an object, `count`).
//
// The lines marked "doc:" are copied from the tools' own documentation:
//   [benchdnn-conv]  oneDNN tests/benchdnn/doc/driver_conv.md, "Examples"
//   [benchdnn-desc]  oneDNN tests/benchdnn/doc/knobs_desc.md, the underscore example
//   [miopen-readme]  MIOpen driver/README.md, "MIOpenDriver example usages"
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "config.h"
#include "json_input.h"
#include "peer_formats.h"
#include "run_binary.h"
#include "runner.h"
#include "shapes.h"

namespace convbp {
namespace {

using test::run_convbp;

ConvProblem make(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t k,
                 std::int64_t r, std::int64_t s) {
  return ConvProblem{.n = n, .c = c, .h = h, .w = w, .k = k, .r = r, .s = s};
}

std::string benchdnn_error(const std::string& line) {
  try {
    BenchdnnKnobs knobs;
    parse_benchdnn_line(line, knobs);
  } catch (const PeerFormatError& e) {
    return e.what();
  }
  return "";
}

std::string miopen_error(const std::string& line) {
  try {
    parse_miopen_command(line);
  } catch (const PeerFormatError& e) {
    return e.what();
  }
  return "";
}

// --- benchdnn -------------------------------------------------------------------------------

TEST(Benchdnn, ReadsTheAlexnetExampleOfTheConvDriverDoc) {
  // doc [benchdnn-conv]: "./benchdnn --conv -v1 --mb=4 --dir=FWD_B --cfg=f32,u8s8u8
  //   ic3ih227iw227_oc96oh55ow55_kh11kw11_sh4sw4ph0pw0_n"alexnet:conv1"" (the forward direction
  // and the int8 configuration are convbp's to refuse; the descriptor and --mb are read).
  BenchdnnKnobs knobs;
  const auto problems = parse_benchdnn_line(
      R"(./benchdnn --conv -v1 --mb=4 --dir=BWD_D ic3ih227iw227_oc96oh55ow55_kh11kw11_sh4sw4ph0pw0_n"alexnet:conv1")",
      knobs);
  ASSERT_EQ(problems.size(), 1u);
  ConvProblem expected = make(4, 3, 227, 227, 96, 11, 11);
  expected.stride_h = expected.stride_w = 4;
  EXPECT_EQ(problems[0].problem, expected) << problems[0].problem.key();
  EXPECT_EQ(problems[0].name, "alexnet:conv1");
  EXPECT_EQ(problems[0].passes, std::vector<Pass>{Pass::data});
  EXPECT_EQ(problems[0].problem.p(), 55);

  EXPECT_NE(benchdnn_error("--conv --dir=FWD_B ic3ih227iw227_oc96oh55ow55_kh11kw11_sh4sw4ph0pw0")
                .find("--dir=FWD_B: forward only"),
            std::string::npos);
  EXPECT_NE(benchdnn_error("--cfg=f32,u8s8u8 ic3ih227oc96oh55kh11sh4")
                .find("--cfg=f32,u8s8u8: convbp's tensors share one type"),
            std::string::npos);
}

TEST(Benchdnn, ReadsTheUnderscoreExampleOfTheDescriptorDoc) {
  // doc [benchdnn-desc]: "g20_mb1_ic20ih10_oc20oh10_kh3ph1"
  const PeerProblem p = parse_benchdnn_descriptor("g20_mb1_ic20ih10_oc20oh10_kh3ph1", {});
  ConvProblem expected = square(1, 20, 10, 20, 3, 1, 1, 20);
  EXPECT_EQ(p.problem, expected) << p.problem.key();
  EXPECT_TRUE(p.name.empty());
  EXPECT_TRUE(p.passes.empty());
}

TEST(Benchdnn, ReadsTheResnetDescriptorOfTheIssueAndDesign) {
  const PeerProblem p = parse_benchdnn_descriptor(R"(mb8ic64ih56oc64oh56kh3ph1n"res2")", {});
  EXPECT_EQ(p.problem, square(8, 64, 56, 64, 3, 1, 1)) << p.problem.key();
  EXPECT_EQ(p.name, "res2");
  // Escaped quotes, as a shell line carries them, and no quotes at all.
  EXPECT_EQ(parse_benchdnn_descriptor(R"(mb8ic64ih56oc64oh56kh3ph1n\"res2\")", {}).name, "res2");
  EXPECT_EQ(parse_benchdnn_descriptor("mb8ic64ih56oc64oh56kh3ph1nres2", {}).name, "res2");
}

TEST(Benchdnn, AppliesTheDocumentedDefaults) {
  // mb 2, g 1, strides 1, dilations 0, padding 0 when the output is not given, w = h.
  const PeerProblem p = parse_benchdnn_descriptor("ic3ih8oc4kh3", {});
  EXPECT_EQ(p.problem, make(2, 3, 8, 8, 4, 3, 3)) << p.problem.key();
  EXPECT_EQ(p.problem.p(), 6);
  // A given output without padding: the top padding is deduced, the bottom follows the output.
  const PeerProblem same = parse_benchdnn_descriptor("ic3ih8oc4oh8kh3", {});
  EXPECT_EQ(same.problem, square(2, 3, 8, 4, 3, 1, 1)) << same.problem.key();
}

TEST(Benchdnn, DilationCountsFromZero) {
  // benchdnn's dh1 is a dilation of 2 (one gap between taps); dh0 is none.
  const PeerProblem p = parse_benchdnn_descriptor("mb2ic8ih20oc8oh16kh3dh1", {});
  EXPECT_EQ(p.problem.dilation_h, 2);
  EXPECT_EQ(p.problem.dilation_w, 2);
  EXPECT_EQ(p.problem.p(), 16);
  EXPECT_EQ(p.problem.pad_top, 0);
  EXPECT_EQ(parse_benchdnn_descriptor("mb2ic8ih20oc8kh3dh0", {}).problem.dilation_h, 1);
}

TEST(Benchdnn, AnOutputLargerThanThePaddingGivesIsBottomPadding) {
  // oh3 from ih5 kh3 sh2 ph0 needs 2 rows of bottom padding (oneDNN's padding_r).
  const PeerProblem p = parse_benchdnn_descriptor("mb1ic1ih5iw6oc1oh3ow3kh3kw2sh2sw2ph0pw1", {});
  EXPECT_EQ(p.problem.pad_top, 0);
  EXPECT_EQ(p.problem.pad_bottom, 2);
  EXPECT_EQ(p.problem.pad_left, 1);
  EXPECT_EQ(p.problem.pad_right, 0);
  EXPECT_EQ(p.problem.p(), 3);
  EXPECT_EQ(p.problem.q(), 3);
}

TEST(Benchdnn, ANonSquareAndOneDimensionalDescriptor) {
  const PeerProblem p = parse_benchdnn_descriptor("mb3ic5ih17iw9oc7kh2kw5sh2sw1ph1pw0dh0dw1", {});
  EXPECT_EQ(p.problem.h, 17);
  EXPECT_EQ(p.problem.w, 9);
  EXPECT_EQ(p.problem.r, 2);
  EXPECT_EQ(p.problem.s, 5);
  EXPECT_EQ(p.problem.stride_h, 2);
  EXPECT_EQ(p.problem.dilation_w, 2);
  // Only w fields: a 1-D convolution, height 1.
  const PeerProblem one = parse_benchdnn_descriptor("mb2ic4iw30oc8kw3pw1", {});
  EXPECT_EQ(one.problem.h, 1);
  EXPECT_EQ(one.problem.r, 1);
  EXPECT_EQ(one.problem.w, 30);
  EXPECT_EQ(one.problem.q(), 30);
}

TEST(Benchdnn, UnsupportedAndMalformedFieldsAreNamed) {
  EXPECT_NE(benchdnn_error("ic3id8ih8oc4kd3kh3").find("field 'id': 3-D convolutions"),
            std::string::npos);
  EXPECT_NE(benchdnn_error("ic3ih8oc4kh3xy5").find("unknown field at 'xy5'"), std::string::npos);
  EXPECT_NE(benchdnn_error("ic3ih8oc4kh").find("field 'kh' needs a non-negative integer"),
            std::string::npos);
  EXPECT_NE(benchdnn_error("ic3ih8ih9oc4kh3").find("field 'ih' given twice"), std::string::npos);
  EXPECT_NE(benchdnn_error("ih8oc4kh3").find("needs ic"), std::string::npos);
  EXPECT_NE(benchdnn_error("ic3ih8oc4").find("needs kh"), std::string::npos);
  EXPECT_NE(benchdnn_error("ic6ih8oc4kh3g4").find("impossible shape"), std::string::npos);
  EXPECT_NE(benchdnn_error("ic3ih8oc4oh2kh3ph0").find("oh=2 does not follow"), std::string::npos);
  EXPECT_NE(benchdnn_error("--batch=inputs/conv/set_conv_all").find("--batch=inputs"),
            std::string::npos);
  EXPECT_NE(benchdnn_error("--attr-post-ops=relu ic3ih8oc4kh3").find("--attr-post-ops=relu"),
            std::string::npos);
  EXPECT_NE(benchdnn_error("--stag=nChw16c ic3ih8oc4kh3").find("NCHW"), std::string::npos);
  EXPECT_NE(benchdnn_error("--pool ic3ih8oc4kh3").find("--conv problems only"), std::string::npos);
}

TEST(Benchdnn, DirectionsMapToPasses) {
  BenchdnnKnobs knobs;
  auto passes = [&](const std::string& line) {
    return parse_benchdnn_line(line + " ic3ih8oc4kh3", knobs).at(0).passes;
  };
  EXPECT_EQ(passes("--dir=BWD_D"), std::vector<Pass>{Pass::data});
  EXPECT_EQ(passes("--dir=BWD_W"), std::vector<Pass>{Pass::weights});
  EXPECT_EQ(passes("--dir=BWD_WB"), std::vector<Pass>{Pass::weights});
  EXPECT_EQ(passes("--dir=FWD_B,BWD_D,BWD_WB"), (std::vector<Pass>{Pass::data, Pass::weights}));
  EXPECT_EQ(passes(""), (std::vector<Pass>{Pass::data, Pass::weights}));  // the knob carries
  EXPECT_TRUE(passes("--reset").empty());
}

// Every shape of the validation sweep, and random ones, written as benchdnn lines, read back to
// the same convolution: the same key wherever the bottom and right padding are all used.
TEST(Benchdnn, WrittenLinesReadBackToTheSameConvolution) {
  std::vector<ConvProblem> shapes = sweep();
  std::mt19937_64 rng(7);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int i = 0; i < 300; ++i) {
    ConvProblem p{.n = pick(1, 4),
                  .c = 0,
                  .h = pick(1, 40),
                  .w = pick(1, 40),
                  .k = 0,
                  .r = pick(1, 7),
                  .s = pick(1, 7),
                  .stride_h = pick(1, 4),
                  .stride_w = pick(1, 4),
                  .pad_top = pick(0, 3),
                  .pad_left = pick(0, 3),
                  .pad_bottom = pick(0, 3),
                  .pad_right = pick(0, 3),
                  .dilation_h = pick(1, 3),
                  .dilation_w = pick(1, 3),
                  .groups = pick(1, 3)};
    p.c = p.groups * pick(1, 4);
    p.k = p.groups * pick(1, 4);
    p.dtype = DType(pick(0, 2));
    p.layout = pick(0, 1) ? Layout::nhwc : Layout::nchw;
    try {
      p.validate();
    } catch (const InvalidProblem&) {
      continue;
    }
    shapes.push_back(p);
  }
  for (const ConvProblem& p : shapes) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      const std::string line = to_benchdnn(p, pass, "suite:layer one");
      BenchdnnKnobs knobs;
      knobs.dtype = DType::bf16;  // what an earlier line of a batch file may have left
      knobs.stag = knobs.dtag = Layout::nhwc;
      if (p.dtype == DType::f32 && p.layout == Layout::nchw) knobs = BenchdnnKnobs{};
      std::vector<PeerProblem> back;
      ASSERT_NO_THROW(back = parse_benchdnn_line(line, knobs)) << line << " from " << p.key();
      ASSERT_EQ(back.size(), 1u) << line;
      const ConvProblem& q = back[0].problem;
      EXPECT_EQ(back[0].passes, std::vector<Pass>{pass}) << line;
      EXPECT_EQ(back[0].name, "suite:layer_one") << line;
      EXPECT_EQ(q.p(), p.p()) << line << " from " << p.key();
      EXPECT_EQ(q.q(), p.q()) << line << " from " << p.key();
      EXPECT_LE(q.pad_bottom, p.pad_bottom) << line << " from " << p.key();
      EXPECT_LE(q.pad_right, p.pad_right) << line << " from " << p.key();
      // The last window's reach: padding past it is never read, so the result is the same.
      const bool all_used =
          (p.p() - 1) * p.stride_h + p.dilated_r() == p.h + p.pad_top + p.pad_bottom &&
          (p.q() - 1) * p.stride_w + p.dilated_s() == p.w + p.pad_left + p.pad_right;
      if (all_used) {
        EXPECT_EQ(q.key(), p.key()) << line;
      }
      ConvProblem same_but_padding = q;
      same_but_padding.pad_bottom = p.pad_bottom;
      same_but_padding.pad_right = p.pad_right;
      EXPECT_EQ(same_but_padding.key(), p.key()) << line;
    }
  }
}

// --dt (or --cfg) and --stag/--dtag give the problem's dtype and layout, carried to later lines
// until --reset; mixed types, layouts that differ between source and destination, and blocked
// layouts are errors that name the option.
TEST(Benchdnn, ReadsTheTypeAndLayoutFromDtAndTags) {
  auto one = [](const std::string& line, BenchdnnKnobs& knobs) {
    const std::vector<PeerProblem> got = parse_benchdnn_line(line, knobs);
    EXPECT_EQ(got.size(), 1u) << line;
    return got.empty() ? ConvProblem{} : got[0].problem;
  };
  BenchdnnKnobs knobs;
  ConvProblem p = one("--dt=bf16 --stag=axb --dtag=axb ic3ih8oc4kh3", knobs);
  EXPECT_EQ(p.dtype, DType::bf16);
  EXPECT_EQ(p.layout, Layout::nhwc);
  p = one("ic3ih8oc4kh3", knobs);  // carried
  EXPECT_EQ(p.key(), "n2_c3_h8_w8_k4_r3_s3_st1x1_pad0x0x0x0_dil1x1_g1_bf16_nhwc");
  p = one("--cfg=f16f16f16 --stag=any --dtag=abcd ic3ih8oc4kh3", knobs);
  EXPECT_EQ(p.dtype, DType::f16);
  EXPECT_EQ(p.layout, Layout::nchw);
  p = one("--dt=f32:f32:f32 --stag=acdb --dtag=nhwc ic3ih8oc4kh3", knobs);
  EXPECT_EQ(p.dtype, DType::f32);
  EXPECT_EQ(p.layout, Layout::nhwc);
  p = one("--reset ic3ih8oc4kh3", knobs);
  EXPECT_EQ(p.key(), "n2_c3_h8_w8_k4_r3_s3_st1x1_pad0x0x0x0_dil1x1_g1");
  EXPECT_NE(benchdnn_error("--dt=bf16:f32:bf16 ic3ih8oc4kh3")
                .find("--dt=bf16:f32:bf16: convbp's tensors share one type"),
            std::string::npos);
  EXPECT_NE(benchdnn_error("--dt=s8 ic3ih8oc4kh3").find("--dt=s8"), std::string::npos);
  // `any` (benchdnn's default) takes the others' layout; tags that are given must agree.
  p = one("--reset --stag=axb ic3ih8oc4kh3", knobs);
  EXPECT_EQ(p.layout, Layout::nhwc);
  p = one("--reset --stag=any --dtag=any --wtag=ohwi ic3ih8oc4kh3", knobs);
  EXPECT_EQ(p.layout, Layout::nhwc);
  p = one("--reset --stag=abcd --wtag=oihw ic3ih8oc4kh3", knobs);
  EXPECT_EQ(p.layout, Layout::nchw);
  EXPECT_NE(benchdnn_error("--stag=axb --dtag=abcd ic3ih8oc4kh3")
                .find("--stag and --dtag name different layouts (nhwc, nchw)"),
            std::string::npos);
  EXPECT_NE(benchdnn_error("--stag=axb --dtag=axb --wtag=oihw ic3ih8oc4kh3")
                .find("--stag and --wtag name different layouts (nhwc, nchw)"),
            std::string::npos);
  EXPECT_NE(benchdnn_error("--wtag=OIhw16i16o ic3ih8oc4kh3").find("--wtag=OIhw16i16o"),
            std::string::npos);
}

// `convbp cases --benchdnn` of a suite with several types and layouts states them on every
// line (a batch file's options carry), and those lines read back as a suite give every case its
// own type and layout, named as the line names it.
TEST(Benchdnn, MixedTypesWrittenAsLinesReadBackEachWithItsOwn) {
  const ConvProblem base = make(2, 3, 8, 8, 4, 3, 3);
  std::vector<ConvProblem> problems;
  for (DType t : {DType::bf16, DType::f32}) {
    for (Layout l : {Layout::nhwc, Layout::nchw}) {
      ConvProblem p = base;
      p.dtype = t;
      p.layout = l;
      problems.push_back(p);
    }
  }
  std::string text;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    text += to_benchdnn(problems[i], Pass::data, "s:l" + std::to_string(i), true) + "\n";
  }
  const Suite suite = parse_problem_lines(text, "mixed.txt");
  const std::vector<CaseSpec> cases = expand_cases(suite, RunOptions{});
  ASSERT_EQ(cases.size(), problems.size()) << text;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].problem.key(), problems[i].key()) << text;
    EXPECT_EQ(cases[i].name, "mixed:s:l" + std::to_string(i)) << text;
  }
  // Without explicit_types, the f32 NCHW line after a bf16 NHWC one would inherit bf16 NHWC.
  const std::string carried = to_benchdnn(problems[0], Pass::data, "a") + "\n" +
                              to_benchdnn(problems[3], Pass::data, "b") + "\n";
  EXPECT_EQ(expand_cases(parse_problem_lines(carried, "c.txt"), RunOptions{})[1].problem.dtype,
            DType::bf16);
}

TEST(Benchdnn, TheWriterSpellsTheResnetLayerAsBenchdnnDoes) {
  EXPECT_EQ(
      to_benchdnn(square(8, 64, 56, 64, 3, 1, 1), Pass::data, "resnet50:res2"),
      R"(--dir=BWD_D mb8_ic64ih56iw56_oc64oh56ow56_kh3kw3_sh1sw1_ph1pw1_dh0dw0_n"resnet50:res2")");
  EXPECT_EQ(to_benchdnn(square(2, 8, 8, 8, 3, 1, 1, 8), Pass::weights, ""),
            "--dir=BWD_WB g8mb2_ic8ih8iw8_oc8oh8ow8_kh3kw3_sh1sw1_ph1pw1_dh0dw0");
  ConvProblem amp = square(2, 8, 8, 8, 3, 1, 1);
  amp.dtype = DType::bf16;
  amp.layout = Layout::nhwc;
  EXPECT_EQ(to_benchdnn(amp, Pass::data, ""),
            "--dir=BWD_D --dt=bf16 --stag=axb --dtag=axb "
            "mb2_ic8ih8iw8_oc8oh8ow8_kh3kw3_sh1sw1_ph1pw1_dh0dw0");
}

// --- MIOpenDriver -------------------------------------------------------------------------

TEST(MIOpenDriver, ReadsTheReadmeExampleWithTheDriversDefaults) {
  // doc [miopen-readme]: "./bin/MIOpenDriver conv -W 32 -H 32 -c 3 -k 32 -x 5 -y 5 -p 2 -q 2"
  const PeerProblem p =
      parse_miopen_command("./bin/MIOpenDriver conv -W 32 -H 32 -c 3 -k 32 -x 5 -y 5 -p 2 -q 2");
  EXPECT_EQ(p.problem, square(100, 3, 32, 32, 5, 1, 2)) << p.problem.key();  // -n defaults to 100
  EXPECT_EQ(p.passes, (std::vector<Pass>{Pass::data, Pass::weights}));       // -F 0: fwd dropped
  // doc [miopen-readme]: the forward-only one, and the fp16 one.
  EXPECT_NE(miopen_error("./bin/MIOpenDriver conv -W 32 -H 32 -c 3 -k 32 -x 5 -y 5 -p 2 -q 2 -s 0 "
                         "-F 1")
                .find("-F (--forw) 1: forward only"),
            std::string::npos);
  EXPECT_NE(miopen_error("./bin/MIOpenDriver convfp16 -W 32 -H 32 -c 3 -k 32 -x 5 -y 5 -p 2 -q 2 "
                         "-s 0 -F 1")
                .find("convfp16: convbp measures fp32"),
            std::string::npos);
}

TEST(MIOpenDriver, ReadsEveryShapeFlagAndTheLongNames) {
  const PeerProblem p = parse_miopen_command(
      "MIOpenDriver conv -n 8 -c 64 -H 56 -W 56 -k 64 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 "
      "-g 1 -F 2");
  EXPECT_EQ(p.problem, square(8, 64, 56, 64, 3, 1, 1)) << p.problem.key();
  EXPECT_EQ(p.passes, std::vector<Pass>{Pass::data});
  const PeerProblem q = parse_miopen_command(
      "conv --batchsize 3 --in_channels 4 --in_h 17 --in_w 9 --out_channels 6 --fil_h 2 "
      "--fil_w 5 --conv_stride_h 2 --conv_stride_w 1 --pad_h 1 --pad_w 0 --dilation_h 1 "
      "--dilation_w 2 --group_count 2 --forw 4 --time 1 --verify 0 --in_layout NCHW");
  ConvProblem expected = make(3, 4, 17, 9, 6, 2, 5);
  expected.stride_h = 2;
  expected.pad_top = expected.pad_bottom = 1;
  expected.dilation_w = 2;
  expected.groups = 2;
  EXPECT_EQ(q.problem, expected) << q.problem.key();
  EXPECT_EQ(q.passes, std::vector<Pass>{Pass::weights});
  EXPECT_EQ(parse_miopen_command("conv -F 6").passes,
            (std::vector<Pass>{Pass::data, Pass::weights}));
  EXPECT_EQ(parse_miopen_command("conv -F 3").passes, std::vector<Pass>{Pass::data});
  EXPECT_EQ(parse_miopen_command("conv -F 5").passes, std::vector<Pass>{Pass::weights});
}

TEST(MIOpenDriver, PaddingModesAsTheDriverAppliesThem) {
  // same: ceil(in / stride) outputs; valid: no padding whatever -p says.
  EXPECT_EQ(parse_miopen_command("conv -H 32 -W 32 -y 3 -x 3 -z same").problem.p(), 32);
  EXPECT_EQ(parse_miopen_command("conv -H 32 -W 32 -y 3 -x 3 -p 1 -z valid").problem.p(), 30);
}

TEST(MIOpenDriver, UnsupportedFlagsAreNamed) {
  EXPECT_NE(miopen_error("conv -n 8 --bogus 1").find("unknown flag '--bogus'"), std::string::npos);
  EXPECT_NE(miopen_error("conv -! 8").find("-! (--in_d): 3-D"), std::string::npos);
  EXPECT_NE(miopen_error("conv -_ 3").find("spatial_dim 2"), std::string::npos);
  EXPECT_NE(miopen_error("conv -m trans").find("transposed"), std::string::npos);
  EXPECT_NE(miopen_error("conv -I NHWC").find("-I (--in_layout) NHWC"), std::string::npos);
  EXPECT_NE(miopen_error("conv -n 8 -n 9").find("-n (--batchsize): given twice"),
            std::string::npos);
  EXPECT_NE(miopen_error("conv -n").find("-n (--batchsize): missing value"), std::string::npos);
  EXPECT_NE(miopen_error("conv -n x").find("expected a non-negative integer, got 'x'"),
            std::string::npos);
  EXPECT_NE(miopen_error("conv -F 7").find("expected 0 to 6"), std::string::npos);
  EXPECT_NE(miopen_error("conv -r 1").find("-r (--pad_val) 1: not supported"), std::string::npos);
  EXPECT_NE(miopen_error("pool -n 8").find("not a convolution"), std::string::npos);
  EXPECT_NE(miopen_error("conv -c 6 -k 4 -g 4").find("impossible shape"), std::string::npos);
}

// --- --problem and suites of lines -----------------------------------------------------------

TEST(PeerProblems, TheProblemArgumentTakesAKeyABenchdnnOrAnMIOpenLine) {
  const ConvProblem res2 = square(8, 64, 56, 64, 3, 1, 1);
  EXPECT_EQ(parse_problem_argument(res2.key()).problem, res2);
  EXPECT_EQ(parse_problem_argument("mb8ic64ih56oc64oh56kh3ph1").problem, res2);
  const PeerProblem b = parse_problem_argument("--dir=BWD_WB mb8ic64ih56oc64oh56kh3ph1");
  EXPECT_EQ(b.passes, std::vector<Pass>{Pass::weights});
  const PeerProblem m = parse_problem_argument(
      "./bin/MIOpenDriver conv -n 8 -c 64 -H 56 -W 56 -k 64 -y 3 -x 3 -p 1 -q 1 -F 2");
  EXPECT_EQ(m.problem, res2);
  EXPECT_THROW(parse_problem_argument("n8_c64"), PeerFormatError);
  EXPECT_THROW(parse_problem_argument("mb8ic64ih56oc64kh3 mb8ic64ih56oc64kh1"), PeerFormatError);
}

TEST(PeerProblems, ASuiteOfMixedLinesWithKnobsThatCarry) {
  const std::string text = R"(# resnet-50 layers, in benchdnn's and MIOpen's words
--dir=BWD_D
mb8ic64ih56oc64oh56kh3ph1n"res2_3x3"
mb8_ic256ih56_oc64oh56_kh1ph0   # unnamed: called after its line

./bin/MIOpenDriver conv -n 8 -c 64 -H 56 -W 56 -k 64 -y 3 -x 3 -p 1 -q 1 -F 2
)";
  const Suite s = parse_problem_lines(text, "dir/res.benchdnn");
  EXPECT_EQ(s.name, "res");
  ASSERT_EQ(s.layers.size(), 3u);
  EXPECT_EQ(s.layers[0].name, "res2_3x3");
  EXPECT_EQ(s.layers[1].name, "line4");
  EXPECT_EQ(s.layers[2].name, "line6");
  EXPECT_EQ(s.layers[2].problem, s.layers[0].problem);
  // Every line is data only: the suite's passes, as in a JSON suite.
  EXPECT_EQ(s.passes, std::vector<Pass>{Pass::data});
  for (const Layer& l : s.layers) EXPECT_TRUE(l.passes.empty());
  EXPECT_EQ(expand_cases(s, RunOptions{}).size(), 3u);
}

TEST(PeerProblems, LinesWithDifferentPassesKeepTheirOwn) {
  const Suite s = parse_problem_lines(
      "--dir=BWD_D ic3ih8oc4kh3nA\n--dir=BWD_WB ic3ih8oc4kh3nA\nconv -F 0\n", "x.txt");
  ASSERT_EQ(s.layers.size(), 3u);
  EXPECT_EQ(s.layers[1].name, "A#2");  // names stay unique
  EXPECT_EQ(s.layers[0].passes, std::vector<Pass>{Pass::data});
  EXPECT_EQ(s.layers[1].passes, std::vector<Pass>{Pass::weights});
  const auto cases = expand_cases(s, RunOptions{});
  ASSERT_EQ(cases.size(), 4u);
  EXPECT_EQ(cases[0].pass, Pass::data);
  EXPECT_EQ(cases[1].pass, Pass::weights);
  RunOptions only_data;
  only_data.pass = Pass::data;  // --pass wins over the lines
  EXPECT_EQ(expand_cases(s, only_data).size(), 3u);
}

TEST(PeerProblems, ALineErrorNamesTheFileAndLine) {
  try {
    parse_problem_lines("ic3ih8oc4kh3\n\nic3id8ih8oc4kd3kh3\n", "bad.txt");
    FAIL() << "accepted a 3-D descriptor";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt: line 3: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'id'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_problem_lines("# nothing\n\n", "empty.txt"), ConfigError);
  EXPECT_TRUE(is_problem_lines("  mb2ic3"));
  EXPECT_FALSE(is_problem_lines("\n { \"suite\": 1 }"));
  EXPECT_FALSE(is_problem_lines("[1]"));
}

// --- suite fields written by scripts/suite_from_torch.py ---------------------------------

TEST(SuiteSource, AnObjectNamesModelVersionsAndCommand) {
  const Suite s = parse_suite(parse_json_input(R"j({"suite": "t",
      "source": {"model": "torchvision.models.resnet50(weights=None)",
                 "versions": {"torch": "1.13.0", "torchvision": "0.14.1"},
                 "command": "scripts/suite_from_torch.py resnet50 --batch 8 -o t.json",
                 "input": "3x224x224", "notes": "53 convolutions"},
      "layers": [{"c": 3, "h": 8, "k": 4, "r": 3, "count": 3}]})j"),
                              "t.json");
  EXPECT_EQ(s.source,
            "torchvision.models.resnet50(weights=None), torch 1.13.0, torchvision 0.14.1; input "
            "3x224x224; 53 convolutions; made by scripts/suite_from_torch.py resnet50 --batch 8 "
            "-o t.json");
  EXPECT_EQ(s.layers[0].count, 3);
  auto error = [](const std::string& source) {
    try {
      parse_suite(parse_json_input(R"({"suite": "t", "source": )" + source +
                                   R"(, "layers": [{"c": 3, "h": 8, "k": 4, "r": 3}]})"),
                  "t.json");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error(R"({"model": "m", "command": "c", "weights": 1})")
                .find("t.json: source.weights: unknown key"),
            std::string::npos);
  EXPECT_NE(error(R"({"model": "m"})").find("t.json: source: missing required key \"command\""),
            std::string::npos);
  EXPECT_NE(error(R"({"model": "m", "command": "c", "versions": {"torch": 1}})")
                .find("source.versions.torch: expected a non-empty string"),
            std::string::npos);
  EXPECT_NE(error("7").find("source: expected a non-empty string or an object"), std::string::npos);
}

TEST(SuiteSource, CountsReachEveryCaseOfTheLayer) {
  const Suite s = parse_suite(parse_json_input(R"({"suite": "t", "layers": [
      {"name": "a", "c": 3, "h": 8, "k": 4, "r": 3, "count": 5}, {"name": "b", "c": 3, "h": 8,
       "k": 4, "r": 1}]})"),
                              "t.json");
  const auto cases = expand_cases(s, RunOptions{});
  ASSERT_EQ(cases.size(), 4u);
  EXPECT_EQ(cases[0].count, 5);
  EXPECT_EQ(cases[1].count, 5);
  EXPECT_EQ(cases[2].count, 1);
}

TEST(SuiteSource, TheTracedSuitesShippedInConfigsParse) {
  // Written by scripts/suite_from_torch.py; the distinct shapes and the convolutions they stand
  // for (sum of counts), as the script reported them.
  const std::pair<const char*, std::pair<std::size_t, int>> suites[] = {
      {"torchvision_resnet50", {23, 53}},
      {"torchvision_mobilenet_v2", {30, 52}},
      {"torchvision_efficientnet_b0", {46, 81}},
      {"torchvision_convnext_tiny", {8, 22}}};
  for (const auto& [name, sizes] : suites) {
    const std::string path = std::string(CONVBP_SOURCE_DIR) + "/configs/" + name + ".json";
    Suite s;
    ASSERT_NO_THROW(s = load_suite(path)) << path;
    EXPECT_EQ(s.layers.size(), sizes.first) << path;
    int total = 0;
    for (const Layer& l : s.layers) total += l.count;
    EXPECT_EQ(total, sizes.second) << path;
    EXPECT_NE(s.source.find("made by scripts/suite_from_torch.py"), std::string::npos) << path;
    for (const Layer& l : s.layers) EXPECT_EQ(l.problem.n, 8) << path << " " << l.name;
  }
}

// --- the command line -----------------------------------------------------------------------

TEST(PeerProblemsCli, CasesPrintsBenchdnnLinesAndReadsAFileOfLines) {
  const std::string dir = testing::TempDir();
  const std::string file = dir + "/convbp_peer_lines.txt";
  std::ofstream(file) << "--dir=BWD_WB mb2ic8ih9oc8oh9kh3ph1n\"a\"\n"
                         "./bin/MIOpenDriver conv -n 2 -c 4 -H 11 -W 10 -k 6 -y 3 -x 3 -u 2 -v 2 "
                         "-p 1 -q 1 -F 2\n";
  const auto out = run_convbp("cases " + file + " --benchdnn");
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_EQ(
      out.output,
      "--dir=BWD_WB mb2_ic8ih9iw9_oc8oh9ow9_kh3kw3_sh1sw1_ph1pw1_dh0dw0_n\"convbp_peer_lines:a\"\n"
      "--dir=BWD_D mb2_ic4ih11iw10_oc6oh6ow5_kh3kw3_sh2sw2_ph1pw1_dh0dw0_n\"convbp_peer_lines:"
      "line2\"\n");
  // What it printed reads back as a suite, to the same lines.
  const std::string again = dir + "/convbp_peer_again.txt";
  std::ofstream(again) << out.output;
  const auto twice = run_convbp("cases " + again + " --benchdnn");
  EXPECT_EQ(twice.status, 0) << twice.output;
  EXPECT_EQ(twice.output.size(), out.output.size() + 2 * (std::string("convbp_peer_again:").size()))
      << twice.output;

  const auto problem =
      run_convbp("cases --problem '--dir=BWD_D mb8ic64ih56oc64oh56kh3ph1' --benchdnn");
  EXPECT_EQ(problem.status, 0) << problem.output;
  EXPECT_EQ(problem.output,
            "--dir=BWD_D mb8_ic64ih56iw56_oc64oh56ow56_kh3kw3_sh1sw1_ph1pw1_dh0dw0_n\"default:"
            "n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1\"\n");
  const auto bad = run_convbp("cases --problem 'conv -n 8 -F 1'");
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("--problem: MIOpenDriver flag -F (--forw) 1: forward only"),
            std::string::npos)
      << bad.output;
  std::ofstream(dir + "/convbp_peer_bad.txt") << "ic3ih8oc4kh3\nconv -m trans\n";
  const auto bad_file = run_convbp("cases " + dir + "/convbp_peer_bad.txt --benchdnn");
  EXPECT_EQ(bad_file.status, 2) << bad_file.output;
  EXPECT_NE(bad_file.output.find("convbp_peer_bad.txt: line 2: MIOpenDriver flag -m (--mode) "
                                 "trans: transposed"),
            std::string::npos)
      << bad_file.output;
}

}  // namespace
}  // namespace convbp
