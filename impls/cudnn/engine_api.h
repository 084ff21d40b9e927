// The cuDNN v9 graph (backend) API as the engine entries use it: descriptors, the operation
// graph of a pass, engine configurations named by engine and knobs (Choice), configurations
// finalized into execution plans (Candidate), and what the heuristics offer (Offer).
//
//   engine_api.cpp  this header's functions
//   engines.cpp     the families cudnn.engine.fp32|.tf32|.fp32acc and their members
//   search.cpp      the opt-in knob-space search, cudnn.search.fp32|.tf32|.fp32acc
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace convbp::cudnn {

using Descriptor = std::shared_ptr<void>;

// Descriptor calls that throw with cuDNN's reason (the attribute's number, the status string).
Descriptor make_descriptor(cudnnBackendDescriptorType_t type);
void set(const Descriptor& d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
         std::int64_t count, const void* values);
void set_descriptor(const Descriptor& d, cudnnBackendAttributeName_t name, const Descriptor& v);
// Returns how many values the attribute holds, which may exceed `capacity`.
std::int64_t get(const Descriptor& d, cudnnBackendAttributeName_t name,
                 cudnnBackendAttributeType_t type, std::int64_t capacity, void* values);
void finalize(const Descriptor& d, const char* what);

// Unique ids of the graph's tensors (the variant pack binds pointers to them).
constexpr std::int64_t kUidX = 1, kUidW = 2, kUidDy = 3;
// The byte alignment the graph's tensors declare (cudaMalloc gives 256): an engine configuration
// may use vector loads that need it, so a caller's pointers are checked against it.
constexpr std::int64_t kTensorAlignment = 16;

// The one-operation graph of a pass. Groups are implied by the tensors (w has c/g channels);
// pre- and post-padding are separate, so asymmetric padding is expressible.
struct Graph {
  std::vector<Descriptor> parts;  // kept alive with the graph
  Descriptor graph;
  DType dtype = DType::f32;
};
std::shared_ptr<const Graph> build_graph(const ConvProblem& pr, Pass pass);

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
// Parses a member's name; only the canonical spelling (knobs in ascending type order, each
// once, no leading zeros) is accepted, so that one configuration has one name.
std::optional<std::pair<Choice, Precision>> parse_name(const std::string& name);

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

// The precision a configuration computes a problem of `dtype` in: fp32acc for 16-bit tensors,
// tf32 with the TENSOR_CORE note, else fp32; nullopt when it converts inputs down or reduces in
// lower precision (no entry of this project runs those).
std::optional<Precision> precision_of(const Candidate& c, DType dtype);

// Declines the engines known to compute shapes with unequal pre- and post-padding wrong.
Support asymmetric_padding_support(std::int64_t engine, const ConvProblem& pr, Pass pass);
// Reads the engine's numerical and behavior notes into c.
void read_notes(const Descriptor& engine, Candidate& c);
// Finalizes c.config into c.plan and reads its workspace size; throws when it does not finalize.
void make_plan(Candidate& c);
// Builds a configuration from its choice alone: the engine by global index on the graph, its
// knob choices, the execution plan. Throws with cuDNN's reason when any step is refused.
Candidate build(std::shared_ptr<const Graph> graph, const Choice& choice);
// A variant pack binding the pass's three tensors and the workspace.
Descriptor variant_pack(Pass pass, const Tensors& t, void* workspace);

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
// The offer for (problem, pass): the heuristics run once per shape and pass (a few recent
// answers are kept). Never throws: a failure is kept in Offer::error.
std::shared_ptr<const Offer> offer(const ConvProblem& pr, Pass pass);
// The offer if it has been made and is still kept, else nullptr.
std::shared_ptr<const Offer> offer_if_made(const ConvProblem& pr, Pass pass);
std::string cache_key(const ConvProblem& pr, Pass pass);

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
  void erase(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    items_.remove_if([&](const auto& item) { return item.first == key; });
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

// engines.cpp: the member running `choice` in `precision` (made at first use, never destroyed),
// and the configurations a search found, so that the member's plan is the one measured there
// and says where it came from (Candidate::source).
const Backward* engine_member(const Choice& choice, Precision precision);
void adopt(const ConvProblem& pr, Pass pass, Precision precision,
           std::shared_ptr<const Candidate> found);

// search.cpp: the knob-space search of one (problem, pass, precision), run once per budget and
// kept (a few recent ones), one search at a time in the process. Its budget is
// CONVBP_CUDNN_SEARCH_S seconds (default 20), counted from after the heuristics' offer; one
// configuration's build may overrun it by its own time (a runtime-compiled kernel's compile).
struct SearchResult {
  std::string error;    // the search could not run or its results cannot be used, and why
  std::string summary;  // what was tried, in how long, and what was found, in words
  // Configurations the heuristics did not offer that ran faster than their best in the search
  // (at most 4), fastest first; their source says what the search measured.
  std::vector<std::shared_ptr<const Candidate>> found;
  double budget_s = 0, seconds = 0;
  double grid = 0;  // configurations on the usable engines' knob grids (search.cpp)
  int engines = 0, heuristics_timed = 0, tried = 0;
};
std::shared_ptr<const SearchResult> knob_search(const ConvProblem& pr, Pass pass,
                                                Precision precision);

}  // namespace convbp::cudnn
