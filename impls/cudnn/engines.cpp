// cuDNN v9 graph (backend) API: the engine configurations cuDNN offers for one dgrad or wgrad
// operation graph, entries `cudnn.heur<rank>.fp32|.tf32`.
//
// Why ranks and not engine ids in the names: the registry is static, built before any problem
// is known, while which engines (and which knob settings of each) cuDNN offers depends on the
// problem, the pass, the GPU and the cuDNN version. So for each (problem, pass) we build the
// list once (cached): heuristics mode A's configurations in its order, then mode B's not seen
// yet, then the fallback list's, deduplicated by engine id and knob choices, each finalized
// into an execution plan (a configuration that does not finalize is not offered). The list is
// split by precision: `.tf32` = configurations carrying CUDNN_NUMERICAL_NOTE_TENSOR_CORE (TF32
// tensor cores on fp32 data), `.fp32` = the others. Configurations that down-convert inputs or
// reduce in lower precision are neither, and skipped. Entry `cudnn.heur<r>.<prec>` runs the
// r-th of its list; detail() names the engine and knobs as cudnn-frontend tags them
// ("eng12_k2=3_k13=1") and where the configuration came from. This is the candidate set
// PyTorch's cuDNN v8/v9 path benchmarks (heuristics plus fallback, filtered by allow_tf32).
#include <algorithm>
#include <array>
#include <cstdio>
#include <list>
#include <mutex>
#include <set>
#include <sstream>

#include "common.h"

namespace convbp::cudnn {
namespace {

// Entries registered per precision. A longer list is reported on stderr (never cut silently).
constexpr int kRanks = 32;

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

Descriptor tensor(std::int64_t uid, std::array<std::int64_t, 4> dims) {
  const std::array<std::int64_t, 4> strides = {dims[1] * dims[2] * dims[3], dims[2] * dims[3],
                                               dims[3], 1};  // packed NCHW
  const cudnnDataType_t type = CUDNN_DATA_FLOAT;
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
};

Graph build_graph(const ConvProblem& pr, Pass pass) {
  Graph g;
  auto x = tensor(kUidX, {pr.n, pr.c, pr.h, pr.w});
  auto w = tensor(kUidW, {pr.k, pr.c_per_group(), pr.r, pr.s});
  auto dy = tensor(kUidDy, {pr.n, pr.k, pr.p(), pr.q()});

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

  g.graph = make_descriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  cudnnHandle_t h = handle();
  set(g.graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  void* ops = op.get();
  set(g.graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ops);
  finalize(g.graph, "operation graph");
  g.parts = {x, w, dy, conv, op};
  return g;
}

// One engine configuration, finalized into an execution plan.
struct Candidate {
  Descriptor config, plan;
  std::int64_t engine = -1;
  std::vector<std::pair<std::int64_t, std::int64_t>> knobs;  // (cudnnBackendKnobType_t, value)
  std::set<int> numerical;                                   // cudnnBackendNumericalNote_t
  bool runtime_compiled = false;
  std::string source;  // "heuristics A #0"
  std::size_t workspace = 0;

  bool has(cudnnBackendNumericalNote_t note) const { return numerical.count(note) > 0; }
  bool transform() const {
    return has(CUDNN_NUMERICAL_NOTE_FFT) || has(CUDNN_NUMERICAL_NOTE_WINOGRAD) ||
           has(CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4) ||
           has(CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6) ||
           has(CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13);
  }
  // cudnn-frontend's tag: engine id, then knob type=value.
  std::string tag() const {
    std::string t = "eng" + std::to_string(engine);
    for (const auto& [type, value] : knobs) {
      t += "_k" + std::to_string(type) + "=" + std::to_string(value);
    }
    return t;
  }
};

// Fills engine id, notes and knobs from a configuration the heuristics returned.
void describe_config(Candidate& c) {
  auto engine = make_descriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  void* engine_raw = engine.get();
  get(c.config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &engine_raw);
  get(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &c.engine);

  std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
  const auto n = get(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                     notes.size(), notes.data());
  for (std::int64_t i = 0; i < n; ++i) c.numerical.insert(notes[i]);
  std::array<cudnnBackendBehaviorNote_t, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT> behavior{};
  const auto b = get(engine, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                     behavior.size(), behavior.data());
  for (std::int64_t i = 0; i < b; ++i) {
    c.runtime_compiled |= behavior[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;
  }

  std::vector<Descriptor> choices;
  std::vector<void*> raw;
  for (int i = 0; i < CUDNN_KNOB_TYPE_COUNTS; ++i) {
    choices.push_back(make_descriptor(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR));
    raw.push_back(choices.back().get());
  }
  const auto k = get(c.config, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                     std::int64_t(raw.size()), raw.data());
  for (std::int64_t i = 0; i < k; ++i) {
    cudnnBackendKnobType_t type{};
    std::int64_t value = 0;
    get(choices[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &type);
    get(choices[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &value);
    c.knobs.emplace_back(type, value);
  }
  std::sort(c.knobs.begin(), c.knobs.end());
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
}

// Everything cuDNN offers for one (problem, pass), split by precision.
struct Candidates {
  Graph graph;
  std::vector<Candidate> fp32, tf32;
  std::string error;    // the graph itself could not be built
  std::string summary;  // where the lists came from, for messages
};

void collect(const ConvProblem& pr, Pass pass, Candidates& out);

// Never throws: a failure is kept in `error` (and cached like any answer).
std::shared_ptr<const Candidates> build_candidates(const ConvProblem& pr, Pass pass) {
  auto out = std::make_shared<Candidates>();
  try {
    out->graph = build_graph(pr, pass);
  } catch (const std::exception& e) {
    out->error = std::string("cuDNN graph API declines the shape: ") + e.what();
    return out;
  }
  try {
    collect(pr, pass, *out);
  } catch (const std::exception& e) {
    out->fp32.clear();
    out->tf32.clear();
    out->error = std::string("cuDNN heuristics failed: ") + e.what();
  }
  return out;
}

void collect(const ConvProblem& pr, Pass pass, Candidates& out) {
  std::int64_t engines = 0;
  get(out.graph.graph, CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT, CUDNN_TYPE_INT64, 1,
      &engines);

  const std::pair<cudnnBackendHeurMode_t, const char*> modes[] = {
      {CUDNN_HEUR_MODE_A, "A"}, {CUDNN_HEUR_MODE_B, "B"}, {CUDNN_HEUR_MODE_FALLBACK, "fallback"}};
  std::set<std::string> seen;
  std::ostringstream summary;
  summary << engines << " engines; offered:";
  int skipped_precision = 0, not_finalized = 0, unreadable = 0;
  for (const auto& [mode, label] : modes) {
    std::string note;
    const std::vector<Descriptor> configs = heuristics(out.graph, mode, note);
    summary << " " << label << " " << configs.size() << (note.empty() ? "" : " (" + note + ")");
    for (std::size_t i = 0; i < configs.size(); ++i) {
      Candidate c;
      c.config = configs[i];
      c.source = std::string("heuristics ") + label + " #" + std::to_string(i);
      try {
        describe_config(c);
      } catch (const std::exception&) {
        ++unreadable;
        continue;
      }
      if (!seen.insert(c.tag()).second) continue;
      if (c.has(CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS) ||
          c.has(CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION)) {
        ++skipped_precision;
        continue;
      }
      c.plan = make_descriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      cudnnHandle_t h = handle();
      set(c.plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
      set_descriptor(c.plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, c.config);
      if (cudnnBackendFinalize(c.plan.get()) != CUDNN_STATUS_SUCCESS) {
        ++not_finalized;
        continue;
      }
      std::int64_t workspace = 0;
      get(c.plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &workspace);
      c.workspace = std::size_t(workspace);
      (c.has(CUDNN_NUMERICAL_NOTE_TENSOR_CORE) ? out.tf32 : out.fp32).push_back(std::move(c));
    }
  }
  summary << "; " << seen.size() << " distinct, " << out.fp32.size() << " fp32 + "
          << out.tf32.size() << " tf32 usable";
  if (skipped_precision) summary << ", " << skipped_precision << " fp16-converting skipped";
  if (not_finalized) summary << ", " << not_finalized << " failed to finalize";
  if (unreadable) summary << ", " << unreadable << " unreadable";
  out.summary = summary.str();
  for (const auto* list : {&out.fp32, &out.tf32}) {
    if (list->size() > std::size_t(kRanks)) {
      std::fprintf(stderr,
                   "convbp: cuDNN offers %zu %s engine configurations for %s (%s); only the first "
                   "%d are registered (kRanks in impls/cudnn/engines.cpp)\n",
                   list->size(), list == &out.fp32 ? "fp32" : "tf32", pr.key().c_str(),
                   to_string(pass), kRanks);
    }
  }
}

// The harness asks every entry about the same (problem, pass) in a row, so a few recent lists
// suffice; plans keep their list alive after it leaves the cache. The cache is never destroyed:
// at exit, cuDNN's lazily loaded sublibraries may be gone before a static cache would be.
std::shared_ptr<const Candidates> candidates(const ConvProblem& pr, Pass pass) {
  static std::mutex mutex;
  static auto& cache = *new std::list<std::pair<std::string, std::shared_ptr<const Candidates>>>;
  const std::string key = pr.key() + "/" + to_string(pass);
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = cache.begin(); it != cache.end(); ++it) {
    if (it->first == key) {
      cache.splice(cache.begin(), cache, it);
      return cache.front().second;
    }
  }
  cache.emplace_front(key, build_candidates(pr, pass));
  if (cache.size() > 4) cache.pop_back();
  return cache.front().second;
}

class EnginePlan final : public DevicePlan {
 public:
  EnginePlan(const ConvProblem& pr, Pass pass, std::shared_ptr<const Candidates> list,
             const Candidate& c, bool tf32)
      : DevicePlan(pr, pass, c.workspace), list_(std::move(list)), c_(c), tf32_(tf32) {
    pack_ = make_descriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    const bool data = pass == Pass::data;
    const std::int64_t uids[] = {kUidX, kUidW, kUidDy};
    void* pointers[] = {data ? dx_.get() : x_.get(), data ? w_.get() : dw_.get(), dy_.get()};
    void* workspace = workspace_.get();
    set(pack_, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
    set(pack_, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers);
    set(pack_, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
    finalize(pack_, "variant pack");
  }

  bool deterministic() const override { return !c_.has(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC); }
  double tolerance_factor() const override {
    return cudnn::tolerance_factor(problem_, pass_, tf32_, c_.transform());
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
      if (c_.has(note)) notes += std::string(notes.empty() ? "" : ",") + name;
    }
    if (c_.runtime_compiled) notes += std::string(notes.empty() ? "" : ",") + "runtime_compiled";
    return c_.tag() + " (" + c_.source + (notes.empty() ? "" : "; " + notes) + ")" +
           (pass_ == Pass::weights ? "; db by cudnnConvolutionBackwardBias" : "");
  }

 protected:
  void compute() override {
    CONVBP_CHECK(cudnnBackendExecute(handle(), c_.plan.get(), pack_.get()));
  }

 private:
  std::shared_ptr<const Candidates> list_;  // keeps the execution plan alive
  const Candidate& c_;
  bool tf32_;
  Descriptor pack_;
};

class EngineBackward final : public CudnnBackward {
 public:
  EngineBackward(int rank, bool tf32) : rank_(rank), tf32_(tf32) {}

  std::string name() const override {
    char text[40];
    std::snprintf(text, sizeof text, "cudnn.heur%02d.%s", rank_, tf32_ ? "tf32" : "fp32");
    return text;
  }

  Support supports(const ConvProblem& pr, Pass pass) const override {
    try {
      const auto list = candidates(pr, pass);
      if (!list->error.empty()) return Support::no(list->error);
      const auto& mine = tf32_ ? list->tf32 : list->fp32;
      if (std::size_t(rank_) >= mine.size()) {
        return Support::no("cuDNN offers " + std::to_string(mine.size()) +
                           (tf32_ ? " TF32 tensor-core" : " fp32 (no tensor core)") +
                           " engine configuration(s) here, rank " + std::to_string(rank_) +
                           " is beyond them (" + list->summary + ")");
      }
    } catch (const std::exception& e) {
      return Support::no(e.what());
    }
    return Support::yes();
  }

  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    auto list = candidates(pr, pass);
    const auto& mine = tf32_ ? list->tf32 : list->fp32;
    if (!list->error.empty() || std::size_t(rank_) >= mine.size()) {
      throw std::runtime_error(supports(pr, pass).why);
    }
    const Candidate& c = mine[rank_];
    return std::make_unique<EnginePlan>(pr, pass, std::move(list), c, tf32_);
  }

  // Without the plan the engine's notes are unknown: the bound covers a transform.
  double tolerance_factor(Pass) const override { return tolerance_factor_bound(tf32_, true); }

 private:
  int rank_;
  bool tf32_;
};

}  // namespace

std::vector<std::unique_ptr<Backward>> make_engine_backwards() {
  std::vector<std::unique_ptr<Backward>> list;
  for (bool tf32 : {false, true}) {
    for (int rank = 0; rank < kRanks; ++rank) {
      list.push_back(std::make_unique<EngineBackward>(rank, tf32));
    }
  }
  return list;
}

}  // namespace convbp::cudnn
