#include "peer_formats.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <optional>
#include <set>

#include "json_input.h"

namespace convbp {

namespace {

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    std::size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) words.emplace_back(line.substr(start, i - start));
  }
  return words;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string basename(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// A non-negative decimal integer that fits kMaxDim, or nullopt.
std::optional<std::int64_t> parse_count(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < 0 ||
      v > kMaxDim) {
    return std::nullopt;
  }
  return v;
}

void validate(const ConvProblem& problem, const std::string& what) {
  try {
    problem.validate();
  } catch (const InvalidProblem& e) {
    throw PeerFormatError(what + ": impossible shape: " + e.what());
  }
}

// --- benchdnn --------------------------------------------------------------------------------

// The descriptor's entries (doc/knobs_desc.md), two-letter ones first so that `g`, `n` and
// the one-letter prefixes do not swallow them.
constexpr std::array<std::string_view, 22> kBenchdnnEntries = {
    "mb", "ic", "id", "ih", "iw", "oc", "od", "oh", "ow", "kd", "kh",
    "kw", "sd", "sh", "sw", "pd", "ph", "pw", "dd", "dh", "dw", "g"};

// One spatial dimension of a descriptor, benchdnn's way: o and p deduced when absent.
struct Dim {
  std::optional<std::int64_t> i, o, k, s, p, d;
  bool any() const { return i || o || k || s || p || d; }
};

// Input i, kernel k, stride s, top padding p, benchdnn dilation d (0 = none), output o:
// returns {top, bottom} padding. `h` names the dimension in messages.
std::pair<std::int64_t, std::int64_t> resolve(const Dim& dim, char h, const std::string& what) {
  const std::string ih = std::string("i") + h, kh = std::string("k") + h;
  if (!dim.i) throw PeerFormatError(what + ": needs " + ih + " (the input size)");
  if (!dim.k) throw PeerFormatError(what + ": needs " + kh + " (the kernel size)");
  const std::int64_t i = *dim.i, k = *dim.k, s = dim.s.value_or(1), d = dim.d.value_or(0);
  if (s < 1) throw PeerFormatError(what + ": s" + std::string(1, h) + " must be >= 1");
  if (k < 1) throw PeerFormatError(what + ": " + kh + " must be >= 1");
  const std::int64_t extent = (k - 1) * (d + 1) + 1;
  if (!dim.o) {
    const std::int64_t p = dim.p.value_or(0);
    return {p, p};
  }
  const std::int64_t o = *dim.o;
  std::int64_t top = dim.p ? *dim.p : ((o - 1) * s - i + extent) / 2;
  if (top < 0) {
    throw PeerFormatError(what + ": o" + std::string(1, h) + "=" + std::to_string(o) +
                          " is smaller than " + ih + ", " + kh + " and s" + std::string(1, h) +
                          " give without padding (cropping is not supported)");
  }
  // The least bottom padding that gives o: what the output's last window reaches past the
  // input (benchdnn derives the same, and lets it go negative, which convbp cannot express).
  const std::int64_t bottom = std::max<std::int64_t>(0, (o - 1) * s + extent - i - top);
  const std::int64_t span = i + top + bottom - extent;
  if (span < 0 || span / s + 1 != o) {
    throw PeerFormatError(
        what + ": o" + std::string(1, h) + "=" + std::to_string(o) + " does not follow from " + ih +
        "=" + std::to_string(i) + ", " + kh + "=" + std::to_string(k) + ", s" + std::string(1, h) +
        "=" + std::to_string(s) + ", p" + std::string(1, h) + "=" + std::to_string(top) + ", d" +
        std::string(1, h) + "=" + std::to_string(d) + " (it would need negative padding)");
  }
  return {top, bottom};
}

std::vector<Pass> benchdnn_dirs(std::string_view value, const std::string& option) {
  std::vector<Pass> passes;
  bool forward = false;
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t end = value.find(',', start);
    if (end == std::string_view::npos) end = value.size();
    std::string dir(value.substr(start, end - start));
    std::transform(dir.begin(), dir.end(), dir.begin(),
                   [](unsigned char ch) { return char(std::toupper(ch)); });
    if (dir == "BWD_D") {
      passes.push_back(Pass::data);
    } else if (dir == "BWD_W" || dir == "BWD_WB") {
      passes.push_back(Pass::weights);
    } else if (dir == "FWD_B" || dir == "FWD_D" || dir == "FWD_I") {
      forward = true;
    } else {
      throw PeerFormatError("benchdnn option " + option + ": unknown direction '" + dir +
                            "' (FWD_B, FWD_D, FWD_I, BWD_D, BWD_W, BWD_WB)");
    }
    start = end + 1;
  }
  std::sort(passes.begin(), passes.end());
  passes.erase(std::unique(passes.begin(), passes.end()), passes.end());
  if (passes.empty() && forward) {
    throw PeerFormatError("benchdnn option " + option +
                          ": forward only; convbp measures the backward passes (BWD_D, "
                          "BWD_W, BWD_WB)");
  }
  return passes;
}

// Options that change how benchdnn runs, not what it computes: accepted and ignored.
constexpr std::array<std::string_view, 13> kBenchdnnIgnored = {
    "--mode=",          "--engine=cpu",      "--skip-impl=",
    "--impl=",          "--max-ms-per-prb=", "--fix-times-per-prb=",
    "--perf-template=", "--canonical=",      "--verbose=",
    "--alg=",           "--allow-unimpl=",   "--allow-enum-tags-only=",
    "--summary="};

// --dt (one type, or SRC:WEI:DST all alike) or the older --cfg (f32, bf16, f16, or the three
// run together, bf16bf16bf16): convbp's tensors share one type.
DType benchdnn_dtype(const std::string& value, const std::string& word) {
  for (DType t : {DType::f32, DType::bf16, DType::f16}) {
    const std::string n = to_string(t);
    if (value == n || value == n + ":" + n + ":" + n || value == n + n + n) return t;
  }
  throw PeerFormatError("benchdnn option " + word +
                        ": convbp's tensors share one type, f32, bf16 or f16 (--dt=bf16); "
                        "other types and mixes are not supported");
}

void benchdnn_option(const std::string& word, BenchdnnKnobs& knobs) {
  const std::size_t eq = word.find('=');
  const std::string value = eq == std::string::npos ? "" : word.substr(eq + 1);
  if (word == "--conv") return;  // the driver; the only one convbp reads
  if (word == "--reset") {
    knobs = BenchdnnKnobs{};
  } else if (starts_with(word, "--dir=")) {
    knobs.passes = benchdnn_dirs(value, word);
  } else if (starts_with(word, "--mb=")) {
    const auto mb = parse_count(value);
    if (!mb) throw PeerFormatError("benchdnn option " + word + ": expected an integer >= 0");
    knobs.mb = *mb;
  } else if (starts_with(word, "--cfg=") || starts_with(word, "--dt=")) {
    knobs.dtype = benchdnn_dtype(value, word);
  } else if (starts_with(word, "--stag=") || starts_with(word, "--dtag=") ||
             starts_with(word, "--wtag=")) {
    const bool weights = word[2] == 'w';
    std::optional<Layout> layout;
    if (weights ? (value == "abcd" || value == "oihw" || value == "goihw" || value == "abcde")
                : (value == "abcd" || value == "nchw")) {
      layout = Layout::nchw;
    } else if (weights
                   ? (value == "acdb" || value == "ohwi" || value == "gohwi" || value == "abdec")
                   : (value == "axb" || value == "acdb" || value == "nhwc")) {
      layout = Layout::nhwc;
    } else if (value != "any") {
      throw PeerFormatError("benchdnn option " + word + ": convbp's tensors are NCHW (" +
                            (weights ? "abcd, oihw, goihw" : "abcd, nchw") + ") or NHWC (" +
                            (weights ? "acdb, ohwi, gohwi" : "axb, acdb, nhwc") +
                            "), or any; other layouts are not supported");
    }
    (word[2] == 's' ? knobs.stag : word[2] == 'd' ? knobs.dtag : knobs.wtag) = layout;
  } else if (starts_with(word, "-v") && word.size() > 2 &&
             std::all_of(word.begin() + 2, word.end(),
                         [](unsigned char ch) { return std::isdigit(ch) != 0; })) {
    // verbosity
  } else if (std::any_of(kBenchdnnIgnored.begin(), kBenchdnnIgnored.end(),
                         [&](std::string_view p) { return starts_with(word, p); })) {
    // run control only
  } else if (word == "--deconv" ||
             (starts_with(word, "--") && word.find('=') == std::string::npos && word != "--conv")) {
    throw PeerFormatError("benchdnn driver " + word + ": convbp reads --conv problems only");
  } else {
    throw PeerFormatError("benchdnn option " + word +
                          ": not supported (convbp reads --dir, --mb, --dt/--cfg, --reset, "
                          "--stag/--dtag, --wtag=any and ignores run-control options)");
  }
}

// --- MIOpenDriver ----------------------------------------------------------------------------

struct MiopenFlag {
  char letter;
  std::string_view name;
  enum Kind {
    shape,
    passes,
    mode,
    ignored,
    zero_only,
    unsupported_3d,
    layout,
    cast,
    pad_mode
  } kind;
};

// MIOpen's driver/conv_driver.hpp (ConvDriver::AddCmdLineArgs): every `conv` flag.
constexpr MiopenFlag kMiopenFlags[] = {
    {'n', "batchsize", MiopenFlag::shape},
    {'c', "in_channels", MiopenFlag::shape},
    {'H', "in_h", MiopenFlag::shape},
    {'W', "in_w", MiopenFlag::shape},
    {'k', "out_channels", MiopenFlag::shape},
    {'y', "fil_h", MiopenFlag::shape},
    {'x', "fil_w", MiopenFlag::shape},
    {'u', "conv_stride_h", MiopenFlag::shape},
    {'v', "conv_stride_w", MiopenFlag::shape},
    {'p', "pad_h", MiopenFlag::shape},
    {'q', "pad_w", MiopenFlag::shape},
    {'l', "dilation_h", MiopenFlag::shape},
    {'j', "dilation_w", MiopenFlag::shape},
    {'g', "group_count", MiopenFlag::shape},
    {'F', "forw", MiopenFlag::passes},
    {'m', "mode", MiopenFlag::mode},
    {'_', "spatial_dim", MiopenFlag::mode},
    {'z', "pad_mode", MiopenFlag::pad_mode},
    {'!', "in_d", MiopenFlag::unsupported_3d},
    {'@', "fil_d", MiopenFlag::unsupported_3d},
    {'#', "conv_stride_d", MiopenFlag::unsupported_3d},
    {'$', "pad_d", MiopenFlag::unsupported_3d},
    {'^', "dilation_d", MiopenFlag::unsupported_3d},
    {'%', "trans_output_pad_d", MiopenFlag::unsupported_3d},
    {'Y', "trans_output_pad_h", MiopenFlag::zero_only},
    {'X', "trans_output_pad_w", MiopenFlag::zero_only},
    {'r', "pad_val", MiopenFlag::zero_only},
    {'Z', "tensor_vect", MiopenFlag::zero_only},
    {'L', "vector_length", MiopenFlag::zero_only},  // 1 only, checked below
    {'I', "in_layout", MiopenFlag::layout},
    {'O', "out_layout", MiopenFlag::layout},
    {'f', "fil_layout", MiopenFlag::layout},
    {'U', "in_cast_type", MiopenFlag::cast},
    {'T', "out_cast_type", MiopenFlag::cast},
    {'R', "wei_cast_type", MiopenFlag::cast},
    {'i', "iter", MiopenFlag::ignored},
    {'V', "verify", MiopenFlag::ignored},
    {'C', "verification_cache", MiopenFlag::ignored},
    {'t', "time", MiopenFlag::ignored},
    {'w', "wall", MiopenFlag::ignored},
    {'s', "search", MiopenFlag::ignored},
    {'P', "printconv", MiopenFlag::ignored},
    {'o', "dump_output", MiopenFlag::ignored},
    {'d', "in_data", MiopenFlag::ignored},
    {'e', "weights", MiopenFlag::ignored},
    {'b', "bias", MiopenFlag::ignored},
    {'a', "in_bias", MiopenFlag::ignored},
    {'D', "dout_data", MiopenFlag::ignored},
    {'S', "solution", MiopenFlag::ignored},
    {'G', "gpualloc", MiopenFlag::ignored},
};

// Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "literal" + string.
std::string flag_label(const MiopenFlag& f) {
  std::string label = "-";
  label += f.letter;
  label += " (--";
  label += f.name;
  label += ")";
  return label;
}

const MiopenFlag* find_flag(const std::string& word) {
  for (const MiopenFlag& f : kMiopenFlags) {
    if (word.size() == 2 && word[0] == '-' && word[1] == f.letter) return &f;
    if (starts_with(word, "--") && std::string_view(word).substr(2) == f.name) return &f;
  }
  return nullptr;
}

bool is_conv_base(std::string_view word) {
  return word == "conv" || word == "convfp16" || word == "convbfp16" || word == "convint8";
}

}  // namespace

PeerProblem parse_benchdnn_descriptor(std::string_view text, const BenchdnnKnobs& knobs) {
  const std::string what = "benchdnn problem '" + printable(text) + "'";
  std::map<std::string, std::int64_t> v;
  std::string name;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '_') {
      ++i;
      continue;
    }
    std::string_view entry;
    for (std::string_view e : kBenchdnnEntries) {
      if (starts_with(text.substr(i), e)) {
        entry = e;
        break;
      }
    }
    if (entry.empty() && text[i] == 'n') {  // the name: the rest, quotes (escaped or not) off
      std::string rest(text.substr(i + 1));
      rest.erase(std::remove(rest.begin(), rest.end(), '\\'), rest.end());
      if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') {
        rest = rest.substr(1, rest.size() - 2);
      }
      name = printable(rest);
      break;
    }
    if (entry.empty()) {
      throw PeerFormatError(what + ": unknown field at '" + printable(text.substr(i)) +
                            "' (benchdnn's are g, mb, ic, ih, iw, oc, oh, ow, kh, kw, sh, sw, "
                            "ph, pw, dh, dw, n)");
    }
    std::size_t end = i + entry.size();
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    const auto value = parse_count(text.substr(i + entry.size(), end - i - entry.size()));
    if (!value) {
      throw PeerFormatError(what + ": field '" + std::string(entry) +
                            "' needs a non-negative integer up to " + std::to_string(kMaxDim));
    }
    if (!v.emplace(entry, *value).second) {
      throw PeerFormatError(what + ": field '" + std::string(entry) + "' given twice");
    }
    i = end;
  }
  for (const char* f : {"id", "od", "kd", "sd", "pd", "dd"}) {
    if (v.count(f)) {
      throw PeerFormatError(what + ": field '" + f +
                            "': 3-D convolutions are not supported (convbp takes 2-D ones)");
    }
  }
  auto get = [&](const char* f) -> std::optional<std::int64_t> {
    const auto it = v.find(f);
    return it == v.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
  };
  if (!get("ic")) throw PeerFormatError(what + ": needs ic (input channels)");
  if (!get("oc")) throw PeerFormatError(what + ": needs oc (output channels)");
  Dim hd{get("ih"), get("oh"), get("kh"), get("sh"), get("ph"), get("dh")};
  Dim wd{get("iw"), get("ow"), get("kw"), get("sw"), get("pw"), get("dw")};
  if (!hd.any() && !wd.any()) {
    throw PeerFormatError(what + ": needs a spatial size and kernel (ih and kh)");
  }
  if (!wd.any()) wd = hd;                                // square: w takes h's values
  if (!hd.any()) hd = Dim{1, std::nullopt, 1, 1, 0, 0};  // 1-D: a height of 1

  PeerProblem out;
  out.name = name;
  out.passes = knobs.passes;
  ConvProblem& pr = out.problem;
  pr.n = knobs.mb > 0 ? knobs.mb : get("mb").value_or(2);  // benchdnn's default mb is 2
  pr.groups = get("g").value_or(1);
  pr.c = *get("ic");
  pr.k = *get("oc");
  std::tie(pr.pad_top, pr.pad_bottom) = resolve(hd, 'h', what);
  std::tie(pr.pad_left, pr.pad_right) = resolve(wd, 'w', what);
  pr.h = *hd.i;
  pr.w = *wd.i;
  pr.r = *hd.k;
  pr.s = *wd.k;
  pr.stride_h = hd.s.value_or(1);
  pr.stride_w = wd.s.value_or(1);
  pr.dilation_h = hd.d.value_or(0) + 1;  // benchdnn: 0 = no dilation
  pr.dilation_w = wd.d.value_or(0) + 1;
  // One layout for every tensor: what the tags that are not `any` say, alike.
  std::optional<Layout> layout;
  std::string said;
  for (const auto& [tag, name] : {std::pair{knobs.stag, "--stag"}, std::pair{knobs.dtag, "--dtag"},
                                  std::pair{knobs.wtag, "--wtag"}}) {
    if (!tag) continue;
    if (layout && *layout != *tag) {
      throw PeerFormatError(what + ": " + said + " and " + name + " name different layouts (" +
                            to_string(*layout) + ", " + to_string(*tag) +
                            "); convbp's tensors share one");
    }
    if (!layout) said = name;
    layout = tag;
  }
  pr.dtype = knobs.dtype;
  pr.layout = layout.value_or(Layout::nchw);
  validate(pr, what);
  return out;
}

std::vector<PeerProblem> parse_benchdnn_line(std::string_view line, BenchdnnKnobs& knobs) {
  std::vector<PeerProblem> problems;
  std::vector<std::string> words = split_words(line);
  if (!words.empty() && basename(words[0]) == "benchdnn") words.erase(words.begin());
  for (const std::string& word : words) {
    if (word[0] == '-') {
      benchdnn_option(word, knobs);
    } else {
      problems.push_back(parse_benchdnn_descriptor(word, knobs));
    }
  }
  return problems;
}

bool is_miopen_command(std::string_view line) {
  const std::vector<std::string> words = split_words(line);
  return !words.empty() && (basename(words[0]) == "MIOpenDriver" || is_conv_base(words[0]));
}

PeerProblem parse_miopen_command(std::string_view line) {
  std::vector<std::string> words = split_words(line);
  if (!words.empty() && basename(words[0]) == "MIOpenDriver") words.erase(words.begin());
  const std::string what = "MIOpenDriver";
  if (words.empty()) throw PeerFormatError(what + ": no base argument (conv)");
  if (words[0] != "conv") {
    if (is_conv_base(words[0])) {
      throw PeerFormatError(what + " " + words[0] +
                            ": convbp measures fp32 convolutions only (base argument conv)");
    }
    throw PeerFormatError(what + " " + printable(words[0]) +
                          ": not a convolution (convbp reads the conv base argument)");
  }
  // The driver's defaults (conv_driver.hpp).
  std::map<char, std::int64_t> v = {{'n', 100}, {'c', 3}, {'H', 32}, {'W', 32}, {'k', 32},
                                    {'y', 3},   {'x', 3}, {'u', 1},  {'v', 1},  {'p', 0},
                                    {'q', 0},   {'l', 1}, {'j', 1},  {'g', 1},  {'F', 0}};
  std::set<char> seen;
  std::string pad_mode = "default";
  for (std::size_t i = 1; i < words.size(); ++i) {
    const MiopenFlag* flag = find_flag(words[i]);
    if (!flag) {
      throw PeerFormatError(what + ": unknown flag '" + printable(words[i]) + "'");
    }
    const std::string label = what + " flag " + flag_label(*flag);
    if (!seen.insert(flag->letter).second) throw PeerFormatError(label + ": given twice");
    if (i + 1 >= words.size()) throw PeerFormatError(label + ": missing value");
    const std::string value = words[++i];
    const auto number = parse_count(value);
    switch (flag->kind) {
      case MiopenFlag::shape:
      case MiopenFlag::passes:
        if (!number) {
          throw PeerFormatError(label + ": expected a non-negative integer, got '" +
                                printable(value) + "'");
        }
        v[flag->letter] = *number;
        break;
      case MiopenFlag::mode:
        if (flag->letter == 'm' && value != "conv") {
          throw PeerFormatError(label + " " + printable(value) +
                                ": transposed convolutions are not supported (mode conv)");
        }
        if (flag->letter == '_' && value != "2") {
          throw PeerFormatError(label + " " + printable(value) +
                                ": convbp takes 2-D convolutions only (spatial_dim 2)");
        }
        break;
      case MiopenFlag::pad_mode:
        if (value != "default" && value != "same" && value != "valid") {
          throw PeerFormatError(label + ": expected same, valid or default, got '" +
                                printable(value) + "'");
        }
        pad_mode = value;
        break;
      case MiopenFlag::unsupported_3d:
        throw PeerFormatError(label +
                              ": 3-D convolutions are not supported (convbp takes 2-D "
                              "ones)");
      case MiopenFlag::zero_only:
        if (value != (flag->letter == 'L' ? "1" : "0")) {
          throw PeerFormatError(label + " " + printable(value) + ": not supported (only " +
                                (flag->letter == 'L' ? "1" : "0") + ")");
        }
        break;
      case MiopenFlag::layout:
        if (value != "NCHW") {
          throw PeerFormatError(label + " " + printable(value) +
                                ": convbp's tensors are NCHW; other layouts are not supported");
        }
        break;
      case MiopenFlag::cast:
        if (value != "-1") {
          throw PeerFormatError(label + " " + printable(value) + ": casts are not supported");
        }
        break;
      case MiopenFlag::ignored:
        break;
    }
  }
  PeerProblem out;
  switch (v['F']) {
    case 0:  // fwd + bwd + wrw: the backward ones
    case 6:
      out.passes = {Pass::data, Pass::weights};
      break;
    case 2:
    case 3:
      out.passes = {Pass::data};
      break;
    case 4:
    case 5:
      out.passes = {Pass::weights};
      break;
    case 1:
      throw PeerFormatError(what +
                            " flag -F (--forw) 1: forward only; convbp measures the "
                            "backward passes (-F 2 data, 4 weights, 6 both)");
    default:
      throw PeerFormatError(what + " flag -F (--forw) " + std::to_string(v['F']) +
                            ": expected 0 to 6");
  }
  ConvProblem& pr = out.problem;
  pr.n = v['n'];
  pr.c = v['c'];
  pr.h = v['H'];
  pr.w = v['W'];
  pr.k = v['k'];
  pr.r = v['y'];
  pr.s = v['x'];
  pr.stride_h = v['u'];
  pr.stride_w = v['v'];
  pr.dilation_h = v['l'];
  pr.dilation_w = v['j'];
  pr.groups = v['g'];
  std::int64_t ph = v['p'], pw = v['q'];
  // Padding modes as the driver applies them: only without dilation (or with 1x1 filters).
  if (pad_mode != "default" &&
      ((pr.dilation_h == 1 && pr.dilation_w == 1) || (pr.r == 1 && pr.s == 1))) {
    auto same = [](std::int64_t in, std::int64_t k, std::int64_t s) {
      if (s < 1) return std::int64_t{0};
      return std::max<std::int64_t>(in % s == 0 ? k - s : k - in % s, 0) / 2;
    };
    ph = pad_mode == "same" ? same(pr.h, pr.r, pr.stride_h) : 0;
    pw = pad_mode == "same" ? same(pr.w, pr.s, pr.stride_w) : 0;
  }
  pr.pad_top = pr.pad_bottom = ph;
  pr.pad_left = pr.pad_right = pw;
  validate(pr, what + " conv");
  return out;
}

PeerProblem parse_problem_argument(std::string_view text) {
  // The canonical key has fields joined by '_' and starts n<digits>_; a benchdnn descriptor
  // never does (its name entry comes last).
  const std::vector<std::string> words = split_words(text);
  if (words.size() == 1 && starts_with(words[0], "n") && words[0].size() > 1 &&
      std::isdigit(static_cast<unsigned char>(words[0][1]))) {
    try {
      return PeerProblem{ConvProblem::parse_key(words[0]), "", {}};
    } catch (const InvalidProblem& e) {
      throw PeerFormatError(e.what());
    }
  }
  if (is_miopen_command(text)) return parse_miopen_command(text);
  BenchdnnKnobs knobs;
  std::vector<PeerProblem> problems = parse_benchdnn_line(text, knobs);
  if (problems.size() != 1) {
    throw PeerFormatError(
        "expected one problem: a key like "
        "n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1, a benchdnn "
        "descriptor like mb8ic64ih56oc64oh56kh3ph1, or an MIOpenDriver conv "
        "command line; got " +
        std::to_string(problems.size()) + " problems");
  }
  return problems[0];
}

bool is_problem_lines(std::string_view text) {
  for (char ch : text) {
    if (std::isspace(static_cast<unsigned char>(ch))) continue;
    return ch != '{' && ch != '[';  // '[': JSON too, which the JSON reader refuses clearly
  }
  return false;  // empty: let the JSON reader say so
}

Suite parse_problem_lines(std::string_view text, const std::string& file) {
  Suite suite;
  suite.file = file;
  std::string stem = basename(file);
  if (const std::size_t dot = stem.rfind('.'); dot != std::string::npos && dot > 0) {
    stem = stem.substr(0, dot);
  }
  suite.name = printable(stem);
  suite.source = "problem lines (benchdnn / MIOpenDriver) from " + printable(file);
  BenchdnnKnobs knobs;
  std::set<std::string> names;
  std::size_t line_number = 0, start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    const std::string where = printable(file) + ": line " + std::to_string(line_number);
    std::vector<PeerProblem> problems;
    try {
      if (!is_utf8(line)) throw PeerFormatError("not valid UTF-8");
      if (is_miopen_command(line)) {
        problems.push_back(parse_miopen_command(line));
      } else {
        problems = parse_benchdnn_line(line, knobs);
      }
    } catch (const PeerFormatError& e) {
      // A first line that is no problem at all may be a JSON suite gone wrong: say both.
      const bool first = suite.layers.empty() && !split_words(line).empty();
      throw ConfigError(where + ": " + e.what() +
                        (first ? " (read as problem lines: a JSON suite starts with '{')" : ""));
    }
    for (std::size_t i = 0; i < problems.size(); ++i) {
      PeerProblem& p = problems[i];
      std::string base = p.name;
      if (base.empty()) {
        base = "line";
        base += std::to_string(line_number);
      }
      std::string name = base;
      if (p.name.empty() && problems.size() > 1) name += "." + std::to_string(i + 1);
      for (int copy = 2; !names.insert(name).second; ++copy) {
        name = base + "#" + std::to_string(copy);
      }
      suite.layers.push_back(Layer{name, p.problem, 1, p.passes, true});
    }
  }
  if (suite.layers.empty()) {
    throw ConfigError(printable(file) +
                      ": no problem found (a suite is JSON starting with '{', or lines of "
                      "benchdnn descriptors or MIOpenDriver conv commands)");
  }
  // One set of passes for every layer: the suite's, as in a JSON suite.
  const std::vector<Pass> first = suite.layers[0].passes;
  if (std::all_of(suite.layers.begin(), suite.layers.end(),
                  [&](const Layer& l) { return l.passes == first; })) {
    if (!first.empty()) suite.passes = first;
    for (Layer& l : suite.layers) l.passes.clear();
  }
  return suite;
}

std::string to_benchdnn(const ConvProblem& pr, Pass pass, const std::string& name,
                        bool explicit_types) {
  std::string quoted;
  // benchdnn names have no spaces, and a quote or a '#' (a batch file's comment) would cut it.
  for (char ch : name) {
    quoted += std::isspace(static_cast<unsigned char>(ch)) || ch == '"' || ch == '#' ? '_' : ch;
  }
  std::string line = pass == Pass::data ? "--dir=BWD_D " : "--dir=BWD_WB ";
  // f32 NCHW is benchdnn's default, written as before unless asked.
  if (explicit_types || pr.dtype != DType::f32 || pr.layout != Layout::nchw) {
    line += "--dt=" + std::string(to_string(pr.dtype)) + " ";
    const char* tag = pr.layout == Layout::nhwc ? "axb" : "any";
    line += "--stag=" + std::string(tag) + " --dtag=" + tag + " ";
  }
  auto add = [&](const char* entry, std::int64_t value) {
    line += entry;
    line += std::to_string(value);
  };
  if (pr.groups != 1) add("g", pr.groups);
  add("mb", pr.n);
  add("_ic", pr.c);
  add("ih", pr.h);
  add("iw", pr.w);
  add("_oc", pr.k);
  add("oh", pr.p());
  add("ow", pr.q());
  add("_kh", pr.r);
  add("kw", pr.s);
  add("_sh", pr.stride_h);
  add("sw", pr.stride_w);
  add("_ph", pr.pad_top);
  add("pw", pr.pad_left);
  add("_dh", pr.dilation_h - 1);  // benchdnn: 0 = no dilation
  add("dw", pr.dilation_w - 1);
  if (!quoted.empty()) {
    line += "_n\"";
    line += quoted;
    line += "\"";
  }
  return line;
}

}  // namespace convbp
