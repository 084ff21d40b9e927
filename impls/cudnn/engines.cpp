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
#include <map>
#include <mutex>

#include "engine_api.h"

namespace convbp::cudnn {
namespace {

// A member's configuration on one (problem, pass): taken from the offer when the heuristics ran
// for it already, else rebuilt from the name; `error` says why neither worked.
struct Built {
  std::shared_ptr<const Candidate> candidate;
  std::string error;
};

// Configurations a knob search found and measured (adopt()), by problem, pass and name.
Recent<Candidate>& adopted() {
  static auto& cache = *new Recent<Candidate>(64);
  return cache;
}

Recent<Built>& built_cache() {
  static auto& cache = *new Recent<Built>(16);
  return cache;
}

std::shared_ptr<const Built> built(const ConvProblem& pr, Pass pass, const Choice& choice,
                                   const std::string& name) {
  auto& cache = built_cache();
  const std::string key = cache_key(pr, pass) + "/" + name;
  if (auto found = cache.find(key)) return found;
  auto out = std::make_shared<Built>();
  const std::string tag = choice.tag();
  out->candidate = adopted().find(key);
  if (auto o = offer_if_made(pr, pass); o && !out->candidate) {
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
    pack_ = variant_pack(pass_, io_, workspace_.get());
  }

  bool deterministic() const override { return !c_->has(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC); }
  std::size_t caller_alignment() const override { return std::size_t(kTensorAlignment); }
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
      caller_pack_ = variant_pack(pass_, io_, workspace_.get());
      std::copy(std::begin(bound), std::end(bound), caller_bound_);
    }
    CONVBP_CHECK(cudnnBackendExecute(handle(), c_->plan.get(), caller_pack_.get()));
  }

 private:
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
  std::string environment_error() const override { return cudnn::environment_error(true, false); }
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
      const std::optional<Precision> is = precision_of(c, pr.dtype);
      if (!is) {
        return Support::no(choice_.tag() + " converts inputs down or reduces in lower " +
                           "precision: not an fp32-accumulating entry");
      }
      if (*is != precision_) {
        return Support::no(choice_.tag() + " is " + precision_words(*is) + " here: run it as " +
                           choice_.name(*is));
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

}  // namespace

// The members made so far, by name; never destroyed (members live as long as the program).
const Backward* engine_member(const Choice& choice, Precision precision) {
  static std::mutex mutex;
  static auto& members = *new std::map<std::string, std::unique_ptr<EngineMember>>;
  const std::string name = choice.name(precision);
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = members[name];
  if (!slot) slot = std::make_unique<EngineMember>(choice, precision);
  return slot.get();
}

void adopt(const ConvProblem& pr, Pass pass, Precision precision,
           std::shared_ptr<const Candidate> found) {
  const std::string key = cache_key(pr, pass) + "/" + found->choice.name(precision);
  built_cache().erase(key);  // a plan built before the search would hide its figures
  adopted().put(key, std::move(found));
}

namespace {

// A family of engine configurations: members named `cudnn.engine<id>[.k<knob>=<value>...].<p>`,
// which one of its members is depends on the problem (members()).
class ConfigFamily : public EngineEntry {
 public:
  using EngineEntry::EngineEntry;

  std::string members_named() const override {
    return std::string("cudnn.engine<id>[.k<knob>=<value>...].") + to_string(precision_);
  }

  const Backward* member(const std::string& name) const override {
    const auto parsed = parse_name(name);
    if (!parsed || parsed->second != precision_) return nullptr;
    return engine_member(parsed->first, precision_);
  }

  // Planned on its own (an Autotuner's fallback list), the family is its first member that
  // does not decline (a configuration known to compute the shape wrong).
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    if (Support s = supports(pr, pass); !s.ok) throw std::runtime_error(s.why);
    std::string why = "no configuration here any more";
    for (const Backward* m : members(pr, pass)) {
      const Support s = m->supports(pr, pass);
      if (s.ok) return m->plan(pr, pass);
      why = m->name() + ": " + s.why;
    }
    throw std::runtime_error(why);
  }
};

// `cudnn.engine.fp32|.tf32|.fp32acc`: stands for every configuration of its precision cuDNN
// offers.
class EngineFamily final : public ConfigFamily {
 public:
  using ConfigFamily::ConfigFamily;

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
      list.push_back(engine_member(c.choice, precision_));
    }
    return list;
  }
};

// `cudnn.search.fp32|.tf32|.fp32acc` (opt-in): stands for the configurations the knob-space
// search (search.cpp) found that the heuristics did not offer and that ran faster than their
// best there. Declines, with the search's figures, where it found none.
class SearchFamily final : public ConfigFamily {
 public:
  using ConfigFamily::ConfigFamily;

  std::string name() const override { return std::string("cudnn.search.") + to_string(precision_); }
  bool opt_in() const override { return true; }
  std::string environment_error() const override { return cudnn::environment_error(true, true); }

  Support supports(const ConvProblem& pr, Pass pass) const override {
    if (Support s = precision_support(precision_, pr, name()); !s.ok) return s;
    if (Support s = pass_support(pr, pass); !s.ok) return s;
    try {
      const auto found = knob_search(pr, pass, precision_);
      if (!found->error.empty()) return Support::no("knob search: " + found->error);
      if (found->found.empty()) {
        return Support::no(found->summary + "; none of those ran faster than the heuristics' " +
                           "best");
      }
    } catch (const std::exception& e) {
      return Support::no(e.what());
    }
    return Support::yes();
  }

  std::vector<const Backward*> members(const ConvProblem& pr, Pass pass) const override {
    std::vector<const Backward*> list;
    for (const auto& c : knob_search(pr, pass, precision_)->found) {
      list.push_back(engine_member(c->choice, precision_));
    }
    return list;
  }
};

}  // namespace

std::vector<std::unique_ptr<Backward>> make_engine_backwards() {
  std::vector<std::unique_ptr<Backward>> list;
  for (Precision precision : {Precision::fp32, Precision::tf32, Precision::fp32acc}) {
    list.push_back(std::make_unique<EngineFamily>(precision));
  }
  for (Precision precision : {Precision::fp32, Precision::tf32, Precision::fp32acc}) {
    list.push_back(std::make_unique<SearchFamily>(precision));
  }
  return list;
}

}  // namespace convbp::cudnn
