// The cuDNN v9 graph API as the engine entries use it (engine_api.h).
#include "engine_api.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <sstream>

namespace convbp::cudnn {

Descriptor make_descriptor(cudnnBackendDescriptorType_t type) {
  cudnnBackendDescriptor_t raw = nullptr;
  CONVBP_CHECK(cudnnBackendCreateDescriptor(type, &raw));
  return Descriptor(raw, [](void* d) { cudnnBackendDestroyDescriptor(d); });
}

void set(const Descriptor& d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
         std::int64_t count, const void* values) {
  clear_last_error();
  const cudnnStatus_t s = cudnnBackendSetAttribute(d.get(), name, type, count, values);
  if (s != CUDNN_STATUS_SUCCESS) {
    throw std::runtime_error("cudnnBackendSetAttribute(attribute " + std::to_string(int(name)) +
                             "): " + describe(s));
  }
}

void set_descriptor(const Descriptor& d, cudnnBackendAttributeName_t name, const Descriptor& v) {
  void* raw = v.get();
  set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw);
}

std::int64_t get(const Descriptor& d, cudnnBackendAttributeName_t name,
                 cudnnBackendAttributeType_t type, std::int64_t capacity, void* values) {
  std::int64_t count = 0;
  clear_last_error();
  const cudnnStatus_t s = cudnnBackendGetAttribute(d.get(), name, type, capacity, &count, values);
  if (s != CUDNN_STATUS_SUCCESS) {
    throw std::runtime_error("cudnnBackendGetAttribute(attribute " + std::to_string(int(name)) +
                             "): " + describe(s));
  }
  return count;
}

void finalize(const Descriptor& d, const char* what) {
  clear_last_error();
  // A graph's, a configuration's and a plan's finalize use the process's cuDNN handle, which no
  // two threads may use at once (lock_handles()).
  const auto held = lock_handles();
  const cudnnStatus_t s = cudnnBackendFinalize(d.get());
  if (s != CUDNN_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cudnnBackendFinalize(") + what + "): " + describe(s));
  }
}

std::string cache_key(const ConvProblem& pr, Pass pass) { return pr.key() + "/" + to_string(pass); }

namespace {

// dims are in NCHW order (w: [k, c/g, r, s]) whatever the layout, as the graph API wants them;
// the strides say the layout: packed NCHW, or packed NHWC (w: [k, r, s, c/g]).
Descriptor tensor(std::int64_t uid, std::array<std::int64_t, 4> dims, const ConvProblem& pr) {
  const std::array<std::int64_t, 4> strides =
      pr.layout == Layout::nhwc
          ? std::array<std::int64_t, 4>{dims[1] * dims[2] * dims[3], 1, dims[3] * dims[1], dims[1]}
          : std::array<std::int64_t, 4>{dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  const cudnnDataType_t type = data_type(pr.dtype);
  const std::int64_t alignment = kTensorAlignment;
  auto t = make_descriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
  set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data());
  set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data());
  set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
  finalize(t, "tensor");
  return t;
}

// Reads an integer at `pos` (a leading '-' allowed when `sign`), advancing `pos`.
bool read_int(const std::string& s, std::size_t& pos, bool sign, std::int64_t& out) {
  const std::size_t start = pos;
  if (sign && pos < s.size() && s[pos] == '-') ++pos;
  const std::size_t digits = pos;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
  if (pos == digits || pos - digits > 18) return false;
  out = std::stoll(s.substr(start, pos - start));
  return true;
}

}  // namespace

std::shared_ptr<const Graph> build_graph(const ConvProblem& pr, Pass pass) {
  auto g = std::make_shared<Graph>();
  g->dtype = pr.dtype;
  auto x = tensor(kUidX, {pr.n, pr.c, pr.h, pr.w}, pr);
  auto w = tensor(kUidW, {pr.k, pr.c_per_group(), pr.r, pr.s}, pr);
  auto dy = tensor(kUidDy, {pr.n, pr.k, pr.p(), pr.q()}, pr);

  auto conv = make_descriptor(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const std::int64_t spatial = 2;
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const std::int64_t dilation[] = {pr.dilation_h, pr.dilation_w},
                     stride[] = {pr.stride_h, pr.stride_w}, pre[] = {pr.pad_top, pr.pad_left},
                     post[] = {pr.pad_bottom, pr.pad_right};
  set(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial);
  set(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  set(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  set(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilation);
  set(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride);
  set(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pre);
  set(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, post);
  finalize(conv, "convolution");

  const float alpha = 1.0f, beta = 0.0f;
  Descriptor op;
  if (pass == Pass::data) {
    op = make_descriptor(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR);
    set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
    set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    set_descriptor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, conv);
    set_descriptor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, w);
    set_descriptor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, x);
    set_descriptor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, dy);
  } else {
    op = make_descriptor(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR);
    set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
    set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    set_descriptor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, conv);
    set_descriptor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, w);
    set_descriptor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, x);
    set_descriptor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, dy);
  }
  finalize(op, pass == Pass::data ? "backward-data operation" : "backward-filter operation");

  g->graph = make_descriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  cudnnHandle_t h = handle();
  set(g->graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  void* ops = op.get();
  set(g->graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ops);
  finalize(g->graph, "operation graph");
  g->parts = {x, w, dy, conv, op};
  return g;
}

std::optional<std::pair<Choice, Precision>> parse_name(const std::string& name) {
  const std::string prefix = "cudnn.engine";
  if (name.rfind(prefix, 0) != 0) return std::nullopt;
  Choice c;
  std::size_t pos = prefix.size();
  if (!read_int(name, pos, false, c.engine)) return std::nullopt;
  while (name.compare(pos, 2, ".k") == 0) {
    pos += 2;
    std::int64_t type = 0, value = 0;
    if (!read_int(name, pos, false, type) || pos >= name.size() || name[pos] != '=') {
      return std::nullopt;
    }
    ++pos;
    if (!read_int(name, pos, true, value)) return std::nullopt;
    c.knobs.emplace_back(type, value);
  }
  const std::string rest = name.substr(pos);
  Precision precision = Precision::fp32;
  if (rest == ".tf32") {
    precision = Precision::tf32;
  } else if (rest == ".fp32acc") {
    precision = Precision::fp32acc;
  } else if (rest != ".fp32") {
    return std::nullopt;
  }
  for (std::size_t i = 1; i < c.knobs.size(); ++i) {
    if (c.knobs[i - 1].first >= c.knobs[i].first) return std::nullopt;  // unsorted, repeated
  }
  if (c.name(precision) != name) return std::nullopt;  // leading zeros, "-0"
  return std::make_pair(std::move(c), precision);
}

std::optional<Precision> precision_of(const Candidate& c, DType dtype) {
  if (c.lower_precision()) return std::nullopt;
  if (dtype != DType::f32) return Precision::fp32acc;
  return c.tensor_core() ? Precision::tf32 : Precision::fp32;
}

// Engines cuDNN offers on shapes with pre- and post-padding unequal but computes wrong there:
// on the H200 sweep (cuDNN 9.14, 2026-11-30) each returned rel_l2 0.9-1.9 or NaN on every such
// shape it was offered (tests/data/cudnn_errors_h200_2026-11-30.csv), and matched the
// reference on the symmetric ones. Declined for those shapes, per pass (engine ids are the
// pass's graph's: engine 1 of the data pass is another kernel, and was right).
struct WrongOnAsymmetricPadding {
  std::int64_t engine;
  Pass pass;
  const char* what;
};
constexpr WrongOnAsymmetricPadding kWrongOnAsymmetricPadding[] = {
    {1, Pass::weights, "dw"},
    {18, Pass::weights, "dw (FFT)"},
    {20, Pass::weights, "dw"},
    {50, Pass::data, "dx (FFT; NaN on some shapes)"},
};

Support asymmetric_padding_support(std::int64_t engine, const ConvProblem& pr, Pass pass) {
  if (pr.pad_top == pr.pad_bottom && pr.pad_left == pr.pad_right) return Support::yes();
  for (const auto& wrong : kWrongOnAsymmetricPadding) {
    if (wrong.engine == engine && wrong.pass == pass) {
      return Support::no("cuDNN engine " + std::to_string(engine) + " computes " + wrong.what +
                         " wrong when pre- and post-padding differ (rel_l2 ~1 on the H200 with " +
                         "cuDNN 9.14; docs/cudnn.md): pad symmetrically to use it");
    }
  }
  return Support::yes();
}

// The engine's numerical and behavior notes.
void read_notes(const Descriptor& engine, Candidate& c) {
  std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
  // get() returns how many the attribute holds, which may exceed the room given.
  const auto n = std::min<std::int64_t>(get(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                            CUDNN_TYPE_NUMERICAL_NOTE, notes.size(), notes.data()),
                                        notes.size());
  for (std::int64_t i = 0; i < n; ++i) c.numerical.insert(notes[i]);
  std::array<cudnnBackendBehaviorNote_t, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT> behavior{};
  const auto b =
      std::min<std::int64_t>(get(engine, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                 behavior.size(), behavior.data()),
                             behavior.size());
  for (std::int64_t i = 0; i < b; ++i) {
    c.runtime_compiled |= behavior[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;
  }
}

// Finalizes c.config into c.plan and reads its workspace size; throws when it does not finalize.
void make_plan(Candidate& c) {
  c.plan = make_descriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  cudnnHandle_t h = handle();
  set(c.plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  set_descriptor(c.plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, c.config);
  finalize(c.plan, "execution plan");
  std::int64_t workspace = 0;
  get(c.plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &workspace);
  c.workspace = std::size_t(workspace);
}

// Builds a configuration from its choice alone: the engine by global index on the graph, its
// knob choices, the execution plan. Throws with cuDNN's reason when any step is refused.
Candidate build(std::shared_ptr<const Graph> graph, const Choice& choice) {
  Candidate c;
  c.graph = std::move(graph);
  c.choice = choice;
  c.engine = make_descriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  set_descriptor(c.engine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, c.graph->graph);
  set(c.engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &c.choice.engine);
  finalize(c.engine, "engine");
  read_notes(c.engine, c);

  std::vector<Descriptor> knobs;
  std::vector<void*> raw;
  for (const auto& [type_value, value] : choice.knobs) {
    const auto type = cudnnBackendKnobType_t(type_value);
    knobs.push_back(make_descriptor(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR));
    set(knobs.back(), CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &type);
    set(knobs.back(), CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &value);
    finalize(knobs.back(), "knob choice");
    raw.push_back(knobs.back().get());
  }
  c.config = make_descriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  set_descriptor(c.config, CUDNN_ATTR_ENGINECFG_ENGINE, c.engine);
  if (!raw.empty()) {
    set(c.config, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
        std::int64_t(raw.size()), raw.data());
  }
  finalize(c.config, "engine configuration");
  make_plan(c);
  return c;
}

// What a configuration the heuristics returned is: its engine's id and notes, its knob choices.
Candidate describe_config(std::shared_ptr<const Graph> graph, const Descriptor& config) {
  Candidate c;
  c.graph = std::move(graph);
  c.config = config;
  c.engine = make_descriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  void* engine_raw = c.engine.get();
  get(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &engine_raw);
  get(c.engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &c.choice.engine);
  read_notes(c.engine, c);

  std::vector<Descriptor> choices;
  std::vector<void*> raw;
  for (int i = 0; i < CUDNN_KNOB_TYPE_COUNTS; ++i) {
    choices.push_back(make_descriptor(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR));
    raw.push_back(choices.back().get());
  }
  const auto k = std::min<std::int64_t>(
      get(config, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
          std::int64_t(raw.size()), raw.data()),
      std::int64_t(raw.size()));
  for (std::int64_t i = 0; i < k; ++i) {
    cudnnBackendKnobType_t type{};
    std::int64_t value = 0;
    get(choices[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &type);
    get(choices[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &value);
    c.choice.knobs.emplace_back(type, value);
  }
  std::sort(c.choice.knobs.begin(), c.choice.knobs.end());
  return c;
}

// The configurations one heuristics mode returns; empty (with a note) when the mode does not
// handle this graph.
std::vector<Descriptor> heuristics(const Graph& g, cudnnBackendHeurMode_t mode, std::string& note) {
  auto heur = make_descriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  set_descriptor(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, g.graph);
  set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  clear_last_error();
  cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
  {
    const auto held = lock_handles();  // the graph's handle (finalize() above)
    s = cudnnBackendFinalize(heur.get());
  }
  if (s != CUDNN_STATUS_SUCCESS) {
    note = describe(s);
    return {};
  }
  // A mode whose results cannot be read is noted like one that declines: the other modes'
  // configurations still count.
  try {
    const std::int64_t count =
        get(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, nullptr);
    std::vector<Descriptor> configs;
    std::vector<void*> raw;
    for (std::int64_t i = 0; i < count; ++i) {
      configs.push_back(make_descriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      raw.push_back(configs.back().get());
    }
    const std::int64_t got =
        get(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, raw.data());
    configs.resize(std::size_t(std::min(got, count)));
    return configs;
  } catch (const std::exception& e) {
    note = e.what();
    return {};
  }
}

Descriptor variant_pack(Pass pass, const Tensors& t, void* workspace) {
  Descriptor pack = make_descriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  const bool data = pass == Pass::data;
  const std::int64_t uids[] = {kUidX, kUidW, kUidDy};
  void* pointers[] = {data ? t.dx : const_cast<void*>(t.x), data ? const_cast<void*>(t.w) : t.dw,
                      const_cast<void*>(t.dy)};
  set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
  set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers);
  set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  finalize(pack, "variant pack");
  return pack;
}

namespace {

void collect(Offer& out, const ConvProblem& pr, Pass pass) {
  const auto start = std::chrono::steady_clock::now();
  std::int64_t engines = 0;
  get(out.graph->graph, CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT, CUDNN_TYPE_INT64, 1,
      &engines);

  const std::pair<cudnnBackendHeurMode_t, const char*> modes[] = {
      {CUDNN_HEUR_MODE_A, "A"}, {CUDNN_HEUR_MODE_B, "B"}, {CUDNN_HEUR_MODE_FALLBACK, "fallback"}};
  std::set<std::string> seen;
  std::ostringstream summary;
  summary << engines << " engines; offered:";
  int skipped_precision = 0, not_finalized = 0, unreadable = 0, not_rebuilt = 0;
  int runtime_compiled = 0, skipped_runtime_compiled = 0;
  for (const auto& [mode, label] : modes) {
    std::string note;
    const std::vector<Descriptor> configs = heuristics(*out.graph, mode, note);
    summary << " " << label << " " << configs.size() << (note.empty() ? "" : " (" + note + ")");
    for (std::size_t i = 0; i < configs.size(); ++i) {
      Candidate offered;
      try {
        offered = describe_config(out.graph, configs[i]);
      } catch (const std::exception&) {
        ++unreadable;
        continue;
      }
      if (!seen.insert(offered.choice.tag()).second) continue;
      if (offered.lower_precision()) {
        ++skipped_precision;
        continue;
      }
      // Finalizing a runtime-compiled engine's plan compiles its kernel (NVRTC), which may
      // take seconds: CONVBP_CUDNN_RUNTIME_COMPILED=0 leaves them out when time is short.
      if (offered.runtime_compiled && !runtime_compiled_wanted()) {
        ++skipped_runtime_compiled;
        continue;
      }
      const std::string source = std::string("heuristics ") + label + " #" + std::to_string(i);
      // Built as a tuning database's answer is (from the choice alone), so that what runs
      // here is what the name means. Should cuDNN refuse that, the heuristics' own descriptor
      // is used and detail() says so.
      Candidate c;
      try {
        c = build(out.graph, offered.choice);
      } catch (const std::exception& e) {
        try {
          make_plan(offered);
        } catch (const std::exception&) {
          ++not_finalized;
          continue;
        }
        ++not_rebuilt;
        c = std::move(offered);
        c.caveat = std::string("not rebuilt from its name: ") + e.what();
      }
      c.source = source;
      runtime_compiled += c.runtime_compiled;
      if (pr.dtype != DType::f32) {
        out.fp32acc.push_back(std::move(c));
      } else {
        (c.tensor_core() ? out.tf32 : out.fp32).push_back(std::move(c));
      }
    }
  }
  summary << "; " << seen.size() << " distinct, ";
  if (pr.dtype != DType::f32) {
    summary << out.fp32acc.size() << " fp32-accumulating usable";
  } else {
    summary << out.fp32.size() << " fp32 + " << out.tf32.size() << " tf32 usable";
  }
  if (skipped_precision) {
    summary << ", " << skipped_precision << " down-converting or lower-precision skipped";
  }
  if (skipped_runtime_compiled) {
    summary << ", " << skipped_runtime_compiled
            << " runtime-compiled skipped (CONVBP_CUDNN_RUNTIME_COMPILED=0)";
  }
  if (not_finalized) summary << ", " << not_finalized << " failed to finalize";
  if (unreadable) summary << ", " << unreadable << " unreadable";
  if (not_rebuilt) summary << ", " << not_rebuilt << " not rebuildable from their names";
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char took[96];
  std::snprintf(took, sizeof took, "; heuristics and plans took %.1f s (%d runtime-compiled)",
                seconds, runtime_compiled);
  summary << took;
  out.summary = summary.str();
  // Finalizing a runtime-compiled engine's plan compiles its kernel: say where the time goes.
  if (seconds > 2.0) {
    std::fprintf(stderr, "\nconvbp: cuDNN engine configurations for %s %s: %s\n", pr.key().c_str(),
                 to_string(pass), out.summary.c_str());
  }
}

// Never throws: a failure is kept in `error` (and cached like any answer).
std::shared_ptr<const Offer> build_offer(const ConvProblem& pr, Pass pass) {
  auto out = std::make_shared<Offer>();
  try {
    out->graph = build_graph(pr, pass);
  } catch (const std::exception& e) {
    out->error = std::string("cuDNN graph API declines the shape: ") + e.what();
    return out;
  }
  try {
    collect(*out, pr, pass);
  } catch (const std::exception& e) {
    out->fp32.clear();
    out->tf32.clear();
    out->fp32acc.clear();
    out->error = std::string("cuDNN heuristics failed: ") + e.what();
  }
  return out;
}

Recent<Offer>& offers() {
  static auto& cache = *new Recent<Offer>(4);
  return cache;
}

}  // namespace

std::shared_ptr<const Offer> offer(const ConvProblem& pr, Pass pass) {
  const std::string key = cache_key(pr, pass);
  if (auto found = offers().find(key)) return found;
  return offers().put(key, build_offer(pr, pass));
}

std::shared_ptr<const Offer> offer_if_made(const ConvProblem& pr, Pass pass) {
  return offers().find(cache_key(pr, pass));
}

}  // namespace convbp::cudnn
