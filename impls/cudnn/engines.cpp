// cuDNN v9 graph (backend) API: the engine configurations cuDNN offers for one dgrad or wgrad
// operation graph.
//
// Entries. Which engines (and which knob settings of each) cuDNN offers depends on the problem,
// the pass, the GPU and the cuDNN version, while the registry is built before any problem is
// known. So three families are registered, `cudnn.engine.fp32`, `.tf32` and `.fp32acc`, and each
// stands, on a (problem, pass), for the configurations cuDNN offers there: heuristics mode A's
// in its order, then mode B's not seen yet, then the fallback list's, deduplicated by engine id
// and knob choices. Each is a member named after what it runs,
//     cudnn.engine<id>[.k<knob>=<value>...].fp32|.tf32|.fp32acc   e.g.
//     cudnn.engine12.k2=3.k13=1.tf32
// (knob = cudnnBackendKnobType_t, knobs in ascending order, as cudnn-frontend tags them:
// eng12_k2=3_k13=1). The harness runs, reports and stores members under these names, and a
// member is rebuilt from its name alone (engine by global index, then the knob choices), so a
// tuning database's answer plans without running the heuristics.
//
// Precision: `.tf32` = configurations carrying CUDNN_NUMERICAL_NOTE_TENSOR_CORE (TF32 tensor
// cores on fp32 data), `.fp32` = the others. Configurations that down-convert inputs or reduce
// in lower precision are neither, and skipped. PyTorch's cuDNN v8/v9 path benchmarks the same
// sources (heuristics plus fallback): with allow_tf32 off it drops the TENSOR_CORE ones (our
// `.fp32`), with it on it keeps both (our `.fp32` and `.tf32` together). `.fp32acc` is every
// usable configuration of a bf16 or f16 graph (tensors in the dtype, compute type FLOAT), tensor
// core or not; the f32 families decline 16-bit problems and it declines f32 ones.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "common.h"

namespace convbp::cudnn {
namespace {

using Descriptor = std::shared_ptr<void>;

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
  const cudnnStatus_t s = cudnnBackendFinalize(d.get());
  if (s != CUDNN_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cudnnBackendFinalize(") + what + "): " + describe(s));
  }
}

// Unique ids of the graph's tensors (the variant pack binds pointers to them).
constexpr std::int64_t kUidX = 1, kUidW = 2, kUidDy = 3;

// dims are in NCHW order (w: [k, c/g, r, s]) whatever the layout, as the graph API wants them;
// the strides say the layout: packed NCHW, or packed NHWC (w: [k, r, s, c/g]).
Descriptor tensor(std::int64_t uid, std::array<std::int64_t, 4> dims, const ConvProblem& pr) {
  const std::array<std::int64_t, 4> strides =
      pr.layout == Layout::nhwc
          ? std::array<std::int64_t, 4>{dims[1] * dims[2] * dims[3], 1, dims[3] * dims[1], dims[1]}
          : std::array<std::int64_t, 4>{dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  const cudnnDataType_t type = data_type(pr.dtype);
  const std::int64_t alignment = 16;  // cudaMalloc gives 256
  auto t = make_descriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
  set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data());
  set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data());
  set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
  finalize(t, "tensor");
  return t;
}

// The one-operation graph of a pass. Groups are implied by the tensors (w has c/g channels);
// pre- and post-padding are separate, so asymmetric padding is expressible.
struct Graph {
  std::vector<Descriptor> parts;  // kept alive with the graph
  Descriptor graph;
  DType dtype = DType::f32;
};

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

// An engine and its knob choices: what a member's name says.
struct Choice {
  std::int64_t engine = -1;
  std::vector<std::pair<std::int64_t, std::int64_t>> knobs;  // (cudnnBackendKnobType_t, value)

  // cudnn-frontend's tag: "eng12_k2=3_k13=1".
  std::string tag() const {
    std::string t = "eng" + std::to_string(engine);
    for (const auto& [type, value] : knobs) {
      t += "_k" + std::to_string(type) + "=" + std::to_string(value);
    }
    return t;
  }
  // The member's name: "cudnn.engine12.k2=3.k13=1.tf32".
  std::string name(Precision precision) const {
    std::string n = "cudnn.engine" + std::to_string(engine);
    for (const auto& [type, value] : knobs) {
      n += ".k" + std::to_string(type) + "=" + std::to_string(value);
    }
    return n + "." + to_string(precision);
  }
};

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

// Parses a member's name; only the canonical spelling (knobs in ascending type order, each
// once, no leading zeros) is accepted, so that one configuration has one name.
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

// One engine configuration, finalized into an execution plan on its graph.
struct Candidate {
  std::shared_ptr<const Graph> graph;  // outlives the plan
  Choice choice;
  Descriptor engine, config, plan;
  std::set<int> numerical;  // cudnnBackendNumericalNote_t
  bool runtime_compiled = false;
  std::size_t workspace = 0;
  std::string source;  // "heuristics A #0", "rebuilt from its name"
  std::string caveat;  // set when the configuration could not be rebuilt from its choice

  bool has(cudnnBackendNumericalNote_t note) const { return numerical.count(note) > 0; }
  bool tensor_core() const { return has(CUDNN_NUMERICAL_NOTE_TENSOR_CORE); }
  bool lower_precision() const {
    return has(CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS) ||
           has(CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION);
  }
  // The error model's class (error_model.h).
  AlgorithmClass algorithm_class() const {
    EngineNotes notes;
    notes.tensor_core = tensor_core();
    notes.fft = has(CUDNN_NUMERICAL_NOTE_FFT);
    notes.winograd_tile = has(CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13) ? 13
                          : has(CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6) ? 6
                          : has(CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4) ? 4
                                                                        : 0;
    notes.winograd = has(CUDNN_NUMERICAL_NOTE_WINOGRAD) || notes.winograd_tile > 0;
    return engine_class(choice.engine, notes, graph->dtype);
  }
};

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
  if (cudnnStatus_t s = cudnnBackendFinalize(heur.get()); s != CUDNN_STATUS_SUCCESS) {
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

// Everything cuDNN offers for one (problem, pass), split by precision.
struct Offer {
  std::shared_ptr<const Graph> graph;
  std::vector<Candidate> fp32, tf32, fp32acc;  // fp32acc: a bf16 or f16 graph's configurations
  std::string error;                           // the graph could not be built, or heuristics failed
  std::string summary;                         // where the lists came from, for messages

  const std::vector<Candidate>& list(Precision precision) const {
    return precision == Precision::tf32 ? tf32 : precision == Precision::fp32acc ? fp32acc : fp32;
  }
};

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

std::string cache_key(const ConvProblem& pr, Pass pass) { return pr.key() + "/" + to_string(pass); }

// A few recent answers, most recent first: the harness asks every entry about the same
// (problem, pass) in a row, and plans keep what they use alive after it leaves the cache. Never
// destroyed: at exit, cuDNN's lazily loaded sublibraries may be gone before a static would be.
template <typename T>
class Recent {
 public:
  explicit Recent(std::size_t capacity) : capacity_(capacity) {}
  // The cached value, or nullptr.
  std::shared_ptr<const T> find(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = items_.begin(); it != items_.end(); ++it) {
      if (it->first == key) {
        items_.splice(items_.begin(), items_, it);
        return items_.front().second;
      }
    }
    return nullptr;
  }
  std::shared_ptr<const T> put(const std::string& key, std::shared_ptr<const T> value) {
    std::lock_guard<std::mutex> lock(mutex_);
    items_.emplace_front(key, value);
    if (items_.size() > capacity_) items_.pop_back();
    return value;
  }

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::list<std::pair<std::string, std::shared_ptr<const T>>> items_;
};

Recent<Offer>& offers() {
  static auto& cache = *new Recent<Offer>(4);
  return cache;
}

// The offer for (problem, pass): the heuristics run once per shape and pass.
std::shared_ptr<const Offer> offer(const ConvProblem& pr, Pass pass) {
  const std::string key = cache_key(pr, pass);
  if (auto found = offers().find(key)) return found;
  return offers().put(key, build_offer(pr, pass));
}

// A member's configuration on one (problem, pass): taken from the offer when the heuristics ran
// for it already, else rebuilt from the name; `error` says why neither worked.
struct Built {
  std::shared_ptr<const Candidate> candidate;
  std::string error;
};

std::shared_ptr<const Built> built(const ConvProblem& pr, Pass pass, const Choice& choice,
                                   const std::string& name) {
  static auto& cache = *new Recent<Built>(16);
  const std::string key = cache_key(pr, pass) + "/" + name;
  if (auto found = cache.find(key)) return found;
  auto out = std::make_shared<Built>();
  const std::string tag = choice.tag();
  if (auto o = offers().find(cache_key(pr, pass))) {
    for (Precision precision : {Precision::fp32, Precision::tf32, Precision::fp32acc}) {
      for (const Candidate& c : o->list(precision)) {
        if (c.choice.tag() == tag) out->candidate = std::shared_ptr<const Candidate>(o, &c);
      }
    }
  }
  if (!out->candidate) {
    try {
      auto graph = build_graph(pr, pass);
      auto c = std::make_shared<Candidate>(build(graph, choice));
      c->source = "rebuilt from its name";
      out->candidate = std::move(c);
    } catch (const std::exception& e) {
      out->error = "cuDNN does not build " + tag + " for this shape: " + e.what();
    }
  }
  return cache.put(key, out);
}

class EnginePlan final : public DevicePlan {
 public:
  EnginePlan(const ConvProblem& pr, Pass pass, std::shared_ptr<const Candidate> c)
      : DevicePlan(pr, pass, c->workspace), c_(std::move(c)) {
    pack_ = make_pack(io_);
  }

  bool deterministic() const override { return !c_->has(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC); }
  double tolerance_factor() const override {
    return cudnn::tolerance_factor(c_->algorithm_class(), problem_, pass_);
  }
  std::string detail() const override {
    std::string notes;
    const std::pair<cudnnBackendNumericalNote_t, const char*> names[] = {
        {CUDNN_NUMERICAL_NOTE_TENSOR_CORE, "tensor_core"},
        {CUDNN_NUMERICAL_NOTE_FFT, "fft"},
        {CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC, "nondeterministic"},
        {CUDNN_NUMERICAL_NOTE_WINOGRAD, "winograd"},
        {CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4, "winograd_4x4"},
        {CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6, "winograd_6x6"},
        {CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13, "winograd_13x13"}};
    for (const auto& [note, name] : names) {
      if (c_->has(note)) notes += std::string(notes.empty() ? "" : ",") + name;
    }
    if (c_->runtime_compiled) notes += std::string(notes.empty() ? "" : ",") + "runtime_compiled";
    return c_->choice.tag() + " (" + c_->source + (notes.empty() ? "" : "; " + notes) + ")" +
           (c_->caveat.empty() ? "" : "; " + c_->caveat) + db_detail();
  }

 protected:
  void compute() override {
    if (on_own_buffers()) {
      CONVBP_CHECK(cudnnBackendExecute(handle(), c_->plan.get(), pack_.get()));
      return;
    }
    // The caller's memory (run_on): a variant pack of its pointers, made again only when they
    // change (host work of microseconds, outside the GPU's time).
    const void* const bound[] = {io_.x, io_.w, io_.dy, io_.dx, io_.dw};
    if (!caller_pack_ || !std::equal(std::begin(bound), std::end(bound), caller_bound_)) {
      caller_pack_ = make_pack(io_);
      std::copy(std::begin(bound), std::end(bound), caller_bound_);
    }
    CONVBP_CHECK(cudnnBackendExecute(handle(), c_->plan.get(), caller_pack_.get()));
  }

 private:
  Descriptor make_pack(const Tensors& t) {
    Descriptor pack = make_descriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    const bool data = pass_ == Pass::data;
    const std::int64_t uids[] = {kUidX, kUidW, kUidDy};
    void* pointers[] = {data ? t.dx : const_cast<void*>(t.x), data ? const_cast<void*>(t.w) : t.dw,
                        const_cast<void*>(t.dy)};
    void* workspace = workspace_.get();
    set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
    set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers);
    set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
    finalize(pack, "variant pack");
    return pack;
  }

  std::shared_ptr<const Candidate> c_;  // keeps the execution plan and its graph alive
  Descriptor pack_, caller_pack_;
  const void* caller_bound_[5] = {};
};

const char* precision_words(Precision precision) {
  switch (precision) {
    case Precision::tf32:
      return "TF32 tensor-core";
    case Precision::fp32acc:
      return "fp32-accumulating";
    default:
      return "fp32 (no tensor core)";
  }
}

// Without the plan the engine's notes are unknown: the bound covers every class a member can
// validate (an FFT in the entry's precision, fp32 Winograd up to 5x5 filters). The plans, which
// know their class, always give their own.
class EngineEntry : public CudnnBackward {
 public:
  explicit EngineEntry(Precision precision) : precision_(precision) {}
  double tolerance_factor(Pass) const override {
    double bound = tolerance_factor_bound({Method::winograd, false, 4});
    for (DType dtype : precision_ == Precision::fp32acc
                           ? std::vector<DType>{DType::bf16, DType::f16}
                           : std::vector<DType>{DType::f32}) {
      const bool tensor_cores = precision_ != Precision::fp32;
      bound = std::max({bound, tolerance_factor_bound({Method::fft, tensor_cores, 4, dtype}),
                        tolerance_factor_bound({Method::direct, tensor_cores, 4, dtype})});
    }
    return bound;
  }

 protected:
  // The weights pass computes db with the legacy bias call (32-bit sizes).
  static Support pass_support(const ConvProblem& pr, Pass pass) {
    return pass == Pass::weights ? bias_support(pr) : Support::yes();
  }

  Precision precision_;
};

// One engine configuration: `cudnn.engine<id>[.k<knob>=<value>...].fp32|.tf32|.fp32acc`.
class EngineMember final : public EngineEntry {
 public:
  EngineMember(Choice choice, Precision precision)
      : EngineEntry(precision), choice_(std::move(choice)), name_(choice_.name(precision)) {}

  std::string name() const override { return name_; }

  Support supports(const ConvProblem& pr, Pass pass) const override {
    if (Support s = precision_support(precision_, pr, name()); !s.ok) return s;
    if (Support s = pass_support(pr, pass); !s.ok) return s;
    if (Support s = asymmetric_padding_support(choice_.engine, pr, pass); !s.ok) return s;
    try {
      const auto b = built(pr, pass, choice_, name_);
      if (!b->candidate) return Support::no(b->error);
      const Candidate& c = *b->candidate;
      if (c.lower_precision()) {
        return Support::no(choice_.tag() + " converts inputs down or reduces in lower " +
                           "precision: not an fp32-accumulating entry");
      }
      const Precision is = precision_ == Precision::fp32acc ? Precision::fp32acc
                           : c.tensor_core()                ? Precision::tf32
                                                            : Precision::fp32;
      if (is != precision_) {
        return Support::no(choice_.tag() + " is " + precision_words(is) + " here: run it as " +
                           choice_.name(is));
      }
      if (Support s = validation_support(c.algorithm_class(), pr, pass); !s.ok) return s;
    } catch (const std::exception& e) {
      return Support::no(e.what());
    }
    return Support::yes();
  }

  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    if (Support s = supports(pr, pass); !s.ok) throw std::runtime_error(s.why);
    return std::make_unique<EnginePlan>(pr, pass, built(pr, pass, choice_, name_)->candidate);
  }

 private:
  Choice choice_;
  std::string name_;
};

// The members made so far, by name; never destroyed (members live as long as the program).
const Backward* member_for(const Choice& choice, Precision precision) {
  static std::mutex mutex;
  static auto& members = *new std::map<std::string, std::unique_ptr<EngineMember>>;
  const std::string name = choice.name(precision);
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = members[name];
  if (!slot) slot = std::make_unique<EngineMember>(choice, precision);
  return slot.get();
}

// `cudnn.engine.fp32|.tf32|.fp32acc`: stands for every configuration of its precision cuDNN
// offers.
class EngineFamily final : public EngineEntry {
 public:
  using EngineEntry::EngineEntry;

  std::string name() const override { return std::string("cudnn.engine.") + to_string(precision_); }

  Support supports(const ConvProblem& pr, Pass pass) const override {
    if (Support s = precision_support(precision_, pr, name()); !s.ok) return s;
    if (Support s = pass_support(pr, pass); !s.ok) return s;
    try {
      const auto o = offer(pr, pass);
      if (!o->error.empty()) return Support::no(o->error);
      if (o->list(precision_).empty()) {
        return Support::no(std::string("cuDNN offers no ") + precision_words(precision_) +
                           " engine configuration here (" + o->summary + ")");
      }
    } catch (const std::exception& e) {
      return Support::no(e.what());
    }
    return Support::yes();
  }

  std::vector<const Backward*> members(const ConvProblem& pr, Pass pass) const override {
    std::vector<const Backward*> list;
    const auto o = offer(pr, pass);
    for (const Candidate& c : o->list(precision_)) {
      list.push_back(member_for(c.choice, precision_));
    }
    return list;
  }

  std::string members_named() const override {
    return std::string("cudnn.engine<id>[.k<knob>=<value>...].") + to_string(precision_);
  }

  const Backward* member(const std::string& name) const override {
    const auto parsed = parse_name(name);
    if (!parsed || parsed->second != precision_) return nullptr;
    return member_for(parsed->first, precision_);
  }

  // Planned on its own (an Autotuner's fallback list), the family is cuDNN's first offer that
  // its member does not decline (a configuration known to compute the shape wrong).
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    if (Support s = supports(pr, pass); !s.ok) throw std::runtime_error(s.why);
    std::string why = "cuDNN offers no configuration here any more";
    for (const Backward* m : members(pr, pass)) {
      const Support s = m->supports(pr, pass);
      if (s.ok) return m->plan(pr, pass);
      why = m->name() + ": " + s.why;
    }
    throw std::runtime_error(why);
  }
};

}  // namespace

std::vector<std::unique_ptr<Backward>> make_engine_backwards() {
  std::vector<std::unique_ptr<Backward>> list;
  for (Precision precision : {Precision::fp32, Precision::tf32, Precision::fp32acc}) {
    list.push_back(std::make_unique<EngineFamily>(precision));
  }
  return list;
}

}  // namespace convbp::cudnn
