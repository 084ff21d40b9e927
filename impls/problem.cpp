#include "problem.h"

#include <charconv>
#include <numeric>
#include <vector>

namespace convbp {

const char* to_string(Pass pass) { return pass == Pass::data ? "data" : "weights"; }

std::optional<Pass> parse_pass(std::string_view text) {
  if (text == "data") return Pass::data;
  if (text == "weights") return Pass::weights;
  return std::nullopt;
}

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
    case DType::f32:
      break;
  }
  return "f32";
}

const char* to_string(Layout layout) { return layout == Layout::nhwc ? "nhwc" : "nchw"; }

std::optional<DType> parse_dtype(std::string_view text) {
  if (text == "f32") return DType::f32;
  if (text == "bf16") return DType::bf16;
  if (text == "f16") return DType::f16;
  return std::nullopt;
}

std::optional<Layout> parse_layout(std::string_view text) {
  if (text == "nchw") return Layout::nchw;
  if (text == "nhwc") return Layout::nhwc;
  return std::nullopt;
}

std::size_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 2; }

std::int64_t ConvProblem::p() const {
  return (h + pad_top + pad_bottom - dilated_r()) / stride_h + 1;
}

std::int64_t ConvProblem::q() const {
  return (w + pad_left + pad_right - dilated_s()) / stride_w + 1;
}

double ConvProblem::flops() const {
  return 2.0 * double(n) * double(k) * double(p()) * double(q()) * double(c_per_group()) *
         double(r) * double(s);
}

std::int64_t ConvProblem::accumulation_length(Pass pass) const {
  if (pass == Pass::weights) return n * p() * q();
  // Taps i, i' of one dx row both land on it when (i - i') * dilation is a multiple of the
  // stride, i.e. when i - i' is a multiple of stride / gcd(stride, dilation): at most
  // ceil(r / that) taps per dimension and output channel.
  auto taps = [](std::int64_t extent, std::int64_t stride, std::int64_t dilation) {
    const std::int64_t period = stride / std::gcd(stride, dilation);
    return (extent + period - 1) / period;
  };
  return k_per_group() * taps(r, stride_h, dilation_h) * taps(s, stride_w, dilation_w);
}

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw InvalidProblem(message);
}

// Element count of a tensor, rejecting shapes whose byte count overflows or exceeds memory.
void require_fits(std::initializer_list<std::int64_t> dims, const char* tensor, DType dtype) {
  std::int64_t bytes = std::int64_t(dtype_size(dtype));
  for (std::int64_t d : dims) {
    if (__builtin_mul_overflow(bytes, d, &bytes)) {
      throw InvalidProblem(std::string(tensor) + " is too large: its byte count overflows 64 bits");
    }
  }
  require(bytes <= kMaxBufferBytes, std::string(tensor) + " would take " +
                                        std::to_string(bytes >> 30) + " GiB, over the " +
                                        std::to_string(kMaxBufferBytes >> 30) + " GiB limit");
}

}  // namespace

void ConvProblem::validate() const {
  const std::pair<const char*, std::int64_t> positive[] = {
      {"n", n}, {"c", c}, {"h", h}, {"w", w}, {"k", k}, {"r", r}, {"s", s}, {"groups", groups}};
  for (const auto& [name, value] : positive) {
    require(value >= 1, std::string(name) + " must be >= 1, got " + std::to_string(value));
  }
  require(stride_h >= 1 && stride_w >= 1,
          "stride must be >= 1, got " + std::to_string(stride_h) + "x" + std::to_string(stride_w));
  require(dilation_h >= 1 && dilation_w >= 1, "dilation must be >= 1 (1 = none), got " +
                                                  std::to_string(dilation_h) + "x" +
                                                  std::to_string(dilation_w));
  require(pad_top >= 0 && pad_left >= 0 && pad_bottom >= 0 && pad_right >= 0,
          "padding must be >= 0");
  // Every size fits a 32-bit int: the libraries take them as int, and it bounds the derived
  // sizes below (dilated extents, padded sizes) well inside 64 bits.
  const std::pair<const char*, std::int64_t> fields[] = {{"n", n},
                                                         {"c", c},
                                                         {"h", h},
                                                         {"w", w},
                                                         {"k", k},
                                                         {"r", r},
                                                         {"s", s},
                                                         {"stride_h", stride_h},
                                                         {"stride_w", stride_w},
                                                         {"pad_top", pad_top},
                                                         {"pad_left", pad_left},
                                                         {"pad_bottom", pad_bottom},
                                                         {"pad_right", pad_right},
                                                         {"dilation_h", dilation_h},
                                                         {"dilation_w", dilation_w},
                                                         {"groups", groups}};
  for (const auto& [name, value] : fields) {
    require(value <= kMaxDim, std::string(name) + "=" + std::to_string(value) +
                                  " is too large (at most " + std::to_string(kMaxDim) + ")");
  }
  require(c % groups == 0,
          "c=" + std::to_string(c) + " is not divisible by groups=" + std::to_string(groups));
  require(k % groups == 0,
          "k=" + std::to_string(k) + " is not divisible by groups=" + std::to_string(groups));
  require(dilated_r() <= h + pad_top + pad_bottom,
          "dilated kernel height " + std::to_string(dilated_r()) + " exceeds padded input height " +
              std::to_string(h + pad_top + pad_bottom));
  require(dilated_s() <= w + pad_left + pad_right,
          "dilated kernel width " + std::to_string(dilated_s()) + " exceeds padded input width " +
              std::to_string(w + pad_left + pad_right));
  // Element counts and byte sizes of every tensor, each product checked before it is taken;
  // with these in bounds every derived size (p*q, (c/g)*r*s, flops) is too.
  require_fits({n, c, h, w}, "x", dtype);
  require_fits({k, c / groups, r, s}, "w", dtype);
  require_fits({n, k, p(), q()}, "dy", dtype);
}

std::string ConvProblem::key() const {
  // Appending (rather than chaining operator+) keeps GCC 12's -Wrestrict false positive away.
  std::string key;
  auto field = [&key](const char* prefix, std::initializer_list<std::int64_t> values) {
    if (!key.empty()) key += '_';
    key += prefix;
    bool first = true;
    for (std::int64_t v : values) {
      if (!first) key += 'x';
      key += std::to_string(v);
      first = false;
    }
  };
  field("n", {n});
  field("c", {c});
  field("h", {h});
  field("w", {w});
  field("k", {k});
  field("r", {r});
  field("s", {s});
  field("st", {stride_h, stride_w});
  field("pad", {pad_top, pad_left, pad_bottom, pad_right});
  field("dil", {dilation_h, dilation_w});
  field("g", {groups});
  if (dtype != DType::f32 || layout != Layout::nchw) {
    key += '_';
    key += to_string(dtype);
    key += '_';
    key += to_string(layout);
  }
  return key;
}

namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

// Parses "<prefix><int>x<int>..." with exactly `count` integers.
std::vector<std::int64_t> parse_field(std::string_view part, std::string_view prefix,
                                      std::size_t count, std::string_view key) {
  auto fail = [&]() -> InvalidProblem {
    std::string expected(prefix);
    for (std::size_t i = 0; i < count; ++i) expected += (i ? "x" : "") + std::string("<int>");
    return InvalidProblem("bad problem key '" + std::string(key) + "': field '" +
                          std::string(part) + "' should be " + expected);
  };
  if (part.substr(0, prefix.size()) != prefix) throw fail();
  std::vector<std::int64_t> values;
  for (std::string_view digits : split(part.substr(prefix.size()), 'x')) {
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) throw fail();
    values.push_back(v);
  }
  if (values.size() != count) throw fail();
  return values;
}

}  // namespace

ConvProblem ConvProblem::parse_key(std::string_view key) {
  auto parts = split(key, '_');
  // An optional dtype and layout suffix (absent: f32 NCHW, the keys written before dtypes).
  DType dtype = DType::f32;
  Layout layout = Layout::nchw;
  if (parts.size() == 13) {
    const auto d = parse_dtype(parts[11]);
    const auto l = parse_layout(parts[12]);
    if (!d) {
      throw InvalidProblem("bad problem key '" + std::string(key) + "': dtype '" +
                           std::string(parts[11]) + "' should be f32, bf16 or f16");
    }
    if (!l) {
      throw InvalidProblem("bad problem key '" + std::string(key) + "': layout '" +
                           std::string(parts[12]) + "' should be nchw or nhwc");
    }
    dtype = *d;
    layout = *l;
    parts.resize(11);
  }
  static constexpr std::pair<const char*, std::size_t> kFields[] = {
      {"n", 1}, {"c", 1},  {"h", 1},   {"w", 1},   {"k", 1}, {"r", 1},
      {"s", 1}, {"st", 2}, {"pad", 4}, {"dil", 2}, {"g", 1}};
  if (parts.size() != std::size(kFields)) {
    throw InvalidProblem("bad problem key '" + std::string(key) +
                         "': expected 11 '_'-separated fields like "
                         "n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1, optionally "
                         "followed by a dtype and a layout (_bf16_nhwc)");
  }
  std::vector<std::int64_t> v;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto field = parse_field(parts[i], kFields[i].first, kFields[i].second, key);
    v.insert(v.end(), field.begin(), field.end());
  }
  ConvProblem problem{.n = v[0],
                      .c = v[1],
                      .h = v[2],
                      .w = v[3],
                      .k = v[4],
                      .r = v[5],
                      .s = v[6],
                      .stride_h = v[7],
                      .stride_w = v[8],
                      .pad_top = v[9],
                      .pad_left = v[10],
                      .pad_bottom = v[11],
                      .pad_right = v[12],
                      .dilation_h = v[13],
                      .dilation_w = v[14],
                      .groups = v[15],
                      .dtype = dtype,
                      .layout = layout};
  problem.validate();
  return problem;
}

}  // namespace convbp
