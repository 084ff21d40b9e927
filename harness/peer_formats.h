// Problems in the formats of the peer tools (docs/config.md, "Problem lines from other tools"):
// oneDNN benchdnn's convolution problem descriptors and MIOpenDriver's `conv` command lines,
// read as a suite file of lines or as `--problem`, and convbp's cases written back as
// benchdnn lines, so that a result can be cross-checked with benchdnn.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "problem.h"

namespace convbp {

// A line convbp cannot take. The message names the field or flag and says why:
// "benchdnn field 'id': 3-D convolutions are not supported (convbp takes 2-D ones)".
class PeerFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One problem read from a peer's line.
struct PeerProblem {
  ConvProblem problem;
  std::string name;          // benchdnn's n"..." (empty when the line has none)
  std::vector<Pass> passes;  // from --dir or -F; empty = not stated (the suite's passes)
};

// The benchdnn options that carry from a line to the following ones, as in a benchdnn batch
// file (--reset restores the defaults).
struct BenchdnnKnobs {
  std::vector<Pass> passes;  // --dir; empty = not given
  std::int64_t mb = 0;       // --mb; 0 = the descriptor's own
  DType dtype = DType::f32;  // --dt (or --cfg): one type for every tensor
  // --stag, --dtag and --wtag: the layout each names (abcd/oihw NCHW, axb/ohwi NHWC); none for
  // any (benchdnn's default). Those given must agree; none at all is NCHW.
  std::optional<Layout> stag, dtag, wtag;
};

// One benchdnn convolution descriptor, e.g. `mb8ic64ih56oc64oh56kh3ph1n"res2"` (benchdnn's
// doc/knobs_desc.md): defaults mb 2, g 1, strides 1, dilations 0 (benchdnn counts dilation
// from 0: dh0 is convbp's dilation 1); w takes h's values when no w field is given; an omitted
// oh (ow) is computed, an omitted ph (pw) with a given oh is deduced, and the bottom (right)
// padding is what makes the output oh (ow).
PeerProblem parse_benchdnn_descriptor(std::string_view descriptor, const BenchdnnKnobs& knobs);

// A benchdnn command line or batch-file line: options (`--dir=BWD_D,BWD_WB`, `--mb=N`,
// `--dt=bf16` or `--cfg=f32`, `--stag=axb --dtag=axb`, `--reset`, ...) and descriptors; a
// leading `benchdnn` and `--conv` are skipped.
// Options update `knobs` for this and later lines. Returns the line's problems (maybe none).
std::vector<PeerProblem> parse_benchdnn_line(std::string_view line, BenchdnnKnobs& knobs);

// An MIOpenDriver command line, e.g.
// `./bin/MIOpenDriver conv -n 8 -c 64 -H 56 -W 56 -k 64 -y 3 -x 3 -p 1 -q 1 -F 2`, with the
// driver's defaults for flags not given (n 100, c 3, H W 32, k 32, y x 3); -F selects the
// passes (2 data, 4 weights, 6 both; the forward part of 0, 3 and 5 is dropped).
PeerProblem parse_miopen_command(std::string_view line);

// Whether a line is an MIOpenDriver command (its first word is a path to MIOpenDriver or a
// `conv` base argument) rather than benchdnn's.
bool is_miopen_command(std::string_view line);

// A --problem argument: convbp's canonical key, a benchdnn descriptor (with options before it),
// or an MIOpenDriver command line.
PeerProblem parse_problem_argument(std::string_view text);

// A suite file of problem lines (benchdnn's or MIOpenDriver's, one problem per line, mixed
// freely; `#` starts a comment). ConfigError names the file and the line.
Suite parse_problem_lines(std::string_view text, const std::string& file);

// Whether a suite file's text is problem lines rather than JSON: its first character that is
// not white space is neither `{` nor `[` (JSON).
bool is_problem_lines(std::string_view text);

// A case as a benchdnn batch-file line that convbp reads back, e.g.
// `--dir=BWD_D mb8_ic64ih56iw56_oc64oh56ow56_kh3kw3_sh1sw1_ph1pw1_dh0dw0_n"resnet50:conv1"`.
// data is BWD_D; weights is BWD_WB (dw and db, as convbp's weights pass). benchdnn states the
// top and left padding and the output size: bottom and right padding beyond what the output
// uses come back as the least that gives the same output (the same convolution). Another type
// or layout than f32 NCHW adds `--dt=bf16 --stag=axb --dtag=axb` (any for NCHW), as does
// `explicit_types` for f32 NCHW too: in a batch file options carry to the lines after, so a
// file that mixes them states them on every line.
std::string to_benchdnn(const ConvProblem& problem, Pass pass, const std::string& name,
                        bool explicit_types = false);

}  // namespace convbp
