#include "runner.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "cases.h"
#include "context.h"
#include "data.h"
#include "io.h"
#include "isolate.h"
#include "json_input.h"
#include "npy.h"
#include "selection.h"

namespace convbp {

std::vector<const Backward*> select_impls(const std::vector<std::string>& patterns, bool strict) {
  std::vector<const Backward*> selected, members;
  for (const std::string& pattern : patterns) {
    bool matched = false;
    std::string opt_in;  // opt-in implementations the glob matched but does not select
    for (const Backward* b : registry()) {
      if (!glob_match(pattern, b->name())) continue;
      if (b->opt_in() && pattern != b->name()) {
        opt_in += (opt_in.empty() ? "" : ", ") + b->name();
        continue;
      }
      matched = true;
      if (std::find(selected.begin(), selected.end(), b) == selected.end()) selected.push_back(b);
    }
    // A family's member named in full ("cudnn.engine12.k2=3.fp32", from a report).
    if (!matched) {
      if (const Backward* m = find_backward(pattern)) {
        matched = true;
        if (std::find(members.begin(), members.end(), m) == members.end()) members.push_back(m);
      }
    }
    if (!matched && strict) {
      throw SelectionError("implementation pattern '" + pattern + "' matches no implementation" +
                           (opt_in.empty() ? std::string(" (see `convbp list`)")
                                           : " but the opt-in " + opt_in +
                                                 ", which are selected by full name only"));
    }
  }
  // Registry order, whatever the order of the patterns; members named in full last.
  std::vector<const Backward*> ordered;
  for (const Backward* b : registry()) {
    if (std::find(selected.begin(), selected.end(), b) != selected.end()) ordered.push_back(b);
  }
  ordered.insert(ordered.end(), members.begin(), members.end());
  return ordered;
}

double candidate_timeout_seconds(const TimingSettings& timing, const RunOptions& options) {
  if (options.candidate_timeout_s > 0) return options.candidate_timeout_s;
  return 60.0 + 10.0 * timing.max_seconds_per_case;
}

std::vector<CaseSpec> expand_cases(const Suite& suite, const RunOptions& options) {
  std::vector<Pass> passes = suite.passes;
  if (options.pass) passes = {*options.pass};
  std::vector<Layer> layers = suite.layers;
  std::vector<DType> dtypes = suite.dtypes;
  std::vector<Layout> layouts = suite.layouts;
  if (options.problem) {  // its key names its dtype and layout
    layers = {Layer{options.problem->key(), *options.problem, 1}};
    dtypes = {options.problem->dtype};
    layouts = {options.problem->layout};
  }
  std::vector<CaseSpec> cases;
  for (const Layer& layer : layers) {
    const bool own_passes = !options.pass && !layer.passes.empty();
    const bool own_types = layer.own_types && !options.problem;
    for (DType dtype : own_types ? std::vector<DType>{layer.problem.dtype} : dtypes) {
      for (Layout layout : own_types ? std::vector<Layout>{layer.problem.layout} : layouts) {
        ConvProblem problem = layer.problem;
        problem.dtype = dtype;
        problem.layout = layout;
        // f32 NCHW cases keep the names they always had; others say which they are (a layer
        // of its own type has one: its name is enough).
        std::string name = suite.name + ":" + layer.name;
        if ((dtype != DType::f32 || layout != Layout::nchw) && !options.problem && !own_types) {
          name += std::string(".") + to_string(dtype) + "_" + to_string(layout);
        }
        for (Pass pass : own_passes ? layer.passes : passes) {
          cases.push_back({name, problem, pass, layer.count});
        }
      }
    }
  }
  return cases;
}

std::vector<std::size_t> selected_cases(const std::vector<CaseSpec>& cases,
                                        const RunOptions& options) {
  if (options.shard) return shard_cases(cases, *options.shard);
  std::vector<std::size_t> all(cases.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return all;
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Reference {
  std::vector<double> dx, dw, db;
};

// An fp16 problem whose exact result lies beyond fp16's range cannot be computed in fp16 by any
// implementation: an error naming the first such element, rather than an Inf passed off as a
// result or charged to the implementations.
void require_fp16_range(const ConvProblem& pr, const std::vector<double>& ref, const char* output,
                        TensorKind tensor) {
  if (pr.dtype != DType::f16) return;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!fits_float16(ref[i])) {
      char value[48];
      std::snprintf(value, sizeof value, "%.6g", ref[i]);
      throw std::runtime_error(std::string(output) +
                               index_string(std::int64_t(i), logical_shape(pr, tensor)) +
                               " overflows fp16: the fp64 reference is " + value +
                               ", beyond fp16's largest value 65504");
    }
  }
}

// The registry's reference implementation (Roles::reference), in fp64.
Reference compute_reference(const ConvProblem& pr, Pass pass, CaseData& data) {
  Reference ref;
  if (pass == Pass::data) {
    ref.dx.resize(pr.x_elems());
  } else {
    ref.dw.resize(pr.w_elems());
    ref.db.resize(pr.b_elems());
  }
  // The reference reads the very values, rounded to the dtype, that the implementations see,
  // and writes logical (NCHW-ordered) doubles.
  reference_backward().run_reference(pr, pass, data.tensors(), ref.dx.data(), ref.dw.data(),
                                     ref.db.data());
  if (pass == Pass::data) {
    require_fp16_range(pr, ref.dx, "dx", TensorKind::x);
  } else {
    require_fp16_range(pr, ref.dw, "dw", TensorKind::w);
    require_fp16_range(pr, ref.db, "db", TensorKind::b);
  }
  return ref;
}

ErrorStats check(const ConvProblem& pr, Pass pass, const CaseData& data, const Reference& ref,
                 double factor) {
  const double tol = tolerance_for(pr.accumulation_length(pass), factor, pr.dtype);
  // Outputs are compared in the reference's order (NCHW), so indices in messages are [n,c,h,w]:
  // f32 NCHW where it lies, any other dtype or layout through its logical doubles.
  const bool direct = pr.dtype == DType::f32 && pr.layout == Layout::nchw;
  auto compare_output = [&](const Buffer& out, TensorKind kind, const std::vector<double>& r,
                            const char* name, double floor) {
    const std::vector<std::int64_t> shape = logical_shape(pr, kind);
    if (direct) {
      return compare(std::span<const float>(out.data_as<float>(), out.size()), r, tol, name, shape,
                     floor);
    }
    return compare(to_logical(pr, kind, out), r, tol, name, shape, floor);
  };
  if (pass == Pass::data) return compare_output(data.dx, TensorKind::x, ref.dx, "dx", 0.0);
  // dw and db sum n*p*q terms per element (the same accumulation length). With few filters
  // their outputs are few sums that may cancel, so their scale is floored by the largest norm
  // of one filter's terms: ||dy[:, k]|| for db, and at most ||dy[:, k]|| * max|x| for dw.
  const std::vector<double> dy = to_logical(pr, TensorKind::dy, data.dy);
  const std::int64_t plane = pr.p() * pr.q();
  double dy_norm = 0, x_max = 0;
  for (std::int64_t k = 0; k < pr.k; ++k) {
    double sum = 0;
    for (std::int64_t n = 0; n < pr.n; ++n) {
      const double* v = dy.data() + (n * pr.k + k) * plane;
      for (std::int64_t i = 0; i < plane; ++i) sum += v[i] * v[i];
    }
    dy_norm = std::max(dy_norm, std::sqrt(sum));
  }
  for (std::size_t i = 0; i < data.x.size(); ++i) x_max = std::max(x_max, std::abs(data.x.at(i)));
  const ErrorStats dw = compare_output(data.dw, TensorKind::w, ref.dw, "dw", dy_norm * x_max);
  const ErrorStats db = compare_output(data.db, TensorKind::b, ref.db, "db", dy_norm);
  return worse(dw, db);
}

// Workspace memory, poisoned so that an implementation reading what it never wrote is caught.
// Checked against the memory available first: under overcommit the allocation itself succeeds
// and filling it would get the process killed instead of recording "out of memory".
struct Workspace {
  explicit Workspace(std::size_t bytes) {
    if (!bytes) return;
    require_memory(bytes, "the workspace");
    data.reset(new std::uint8_t[bytes]);
    std::memset(data.get(), 0xff, bytes);  // 0xffffffff is a NaN as fp32
  }
  std::unique_ptr<std::uint8_t[]> data;
};

// The outputs of one call, kept to compare another call's with, bit for bit.
struct Outputs {
  explicit Outputs(const CaseData& d) : dx(d.dx), dw(d.dw), db(d.db) {}
  Buffer dx, dw, db;
};

// "" when `d`'s outputs equal `first`'s bit for bit, else where the first difference is.
std::string first_difference(const ConvProblem& pr, const Outputs& first, const CaseData& d) {
  if (const std::int64_t i = first.dx.first_difference(d.dx); i >= 0) {
    return "dx" + logical_index_string(pr, TensorKind::x, i);
  }
  if (const std::int64_t i = first.dw.first_difference(d.dw); i >= 0) {
    return "dw" + logical_index_string(pr, TensorKind::w, i);
  }
  if (const std::int64_t i = first.db.first_difference(d.db); i >= 0) {
    return "db" + index_string(i, {pr.k});
  }
  return "";
}

class Dumper {
 public:
  Dumper(const std::string& dir, int index, const CaseSpec& spec) {
    if (dir.empty()) return;
    char name[32];
    std::snprintf(name, sizeof name, "%04d-%s", index, to_string(spec.pass));
    sub_ = name;
    path_ = std::filesystem::path(dir) / sub_;
    std::filesystem::create_directories(path_);
    const ConvProblem& pr = spec.problem;
    entry_ = nlohmann::json(problem_fields(pr));
    entry_.update({{"dir", sub_},
                   {"name", spec.name},
                   {"problem", pr.key()},
                   {"pass", to_string(spec.pass)},
                   {"inputs", nlohmann::json::object()},
                   {"outputs", nlohmann::json::object()}});
  }
  bool on() const { return !sub_.empty(); }

  void inputs(const ConvProblem& pr, const CaseData& d) {
    if (!on()) return;
    if (pr.dtype == DType::bf16) {
      entry_["bf16_stored_as"] =
          "uint16: NumPy has no bf16; the bits are a float32's upper half: "
          "(a.astype(np.uint32) << 16).view(np.float32)";
    }
    if (!d.x.empty()) save("inputs", "", "x", d.x, stored_shape(pr, TensorKind::x));
    if (!d.w.empty()) save("inputs", "", "w", d.w, stored_shape(pr, TensorKind::w));
    save("inputs", "", "dy", d.dy, stored_shape(pr, TensorKind::dy));
  }

  // The fp64 reference, kept as float64, in the problem's layout like every other array.
  void reference(const ConvProblem& pr, const Reference& ref) {
    if (!on()) return;
    auto save_ref = [&](const char* tensor, TensorKind kind, const std::vector<double>& v) {
      const std::vector<double> stored = to_stored_order(pr, kind, v);
      save_file("outputs", "reference", tensor, stored.data(), stored_shape(pr, kind));
    };
    if (!ref.dx.empty()) save_ref("dx", TensorKind::x, ref.dx);
    if (!ref.dw.empty()) {
      save_ref("dw", TensorKind::w, ref.dw);
      save_ref("db", TensorKind::b, ref.db);
    }
  }

  void outputs(const ConvProblem& pr, const std::string& impl, const CaseData& d) {
    if (!on()) return;
    if (!d.dx.empty()) save("outputs", impl, "dx", d.dx, stored_shape(pr, TensorKind::x));
    if (!d.dw.empty()) {
      save("outputs", impl, "dw", d.dw, stored_shape(pr, TensorKind::w));
      save("outputs", impl, "db", d.db, {pr.k});
    }
  }

  // The files outputs() recorded for `impl` (null when none), and the same recorded here for
  // files a child process wrote (an isolated candidate's).
  nlohmann::json outputs_of(const std::string& impl) const {
    if (!on() || !entry_["outputs"].contains(impl)) return nullptr;
    return entry_["outputs"][impl];
  }
  void add_outputs(const std::string& impl, const nlohmann::json& files) {
    if (on() && files.is_object()) entry_["outputs"][impl] = files;
  }

  // Appends this case to DIR/index.json (rewritten atomically after every case).
  void finish(const std::string& dir) {
    if (!on()) return;
    const std::string index = (std::filesystem::path(dir) / "index.json").string();
    nlohmann::json doc = {{"cases", nlohmann::json::array()}};
    std::error_code ec;
    if (std::filesystem::exists(index, ec)) {
      // An index this run cannot use (damaged, or not ours) is started anew.
      std::ifstream in(index);
      std::stringstream text;
      text << in.rdbuf();
      try {
        doc = parse_json_input(text.str());
      } catch (const JsonInputError&) {
      }
      if (!doc.is_object() || !doc.contains("cases") || !doc["cases"].is_array()) {
        doc = {{"cases", nlohmann::json::array()}};
      }
    }
    auto& cases = doc["cases"];
    for (auto it = cases.begin(); it != cases.end(); ++it) {
      if (it->is_object() && it->contains("dir") && (*it)["dir"] == sub_) {
        cases.erase(it);
        break;
      }
    }
    cases.push_back(entry_);
    write_json_atomic(index, doc);
  }

 private:
  // A tensor in its dtype: float32, float16, or bf16 as uint16 (the entry says so).
  void save(const char* section, const std::string& impl, const std::string& tensor,
            const Buffer& b, const std::vector<std::int64_t>& shape) {
    switch (b.dtype()) {
      case DType::f32:
        save_file(section, impl, tensor, static_cast<const float*>(b.data()), shape);
        return;
      case DType::bf16:
        save_file(section, impl, tensor, NpyHalf{b.data(), "<u2"}, shape);
        return;
      case DType::f16:
        save_file(section, impl, tensor, NpyHalf{b.data(), "<f2"}, shape);
        return;
    }
  }

  template <typename T>
  void save_file(const char* section, const std::string& impl, const std::string& tensor,
                 const T& data, const std::vector<std::int64_t>& shape) {
    const std::string file = (impl.empty() ? "" : impl + ".") + tensor + ".npy";
    write_npy((path_ / file).string(), data, shape);
    if (impl.empty()) {
      entry_[section][tensor] = file;
    } else {
      entry_[section][impl][tensor] = file;
    }
  }

  std::string sub_;
  std::filesystem::path path_;
  nlohmann::json entry_;
};

// The reference of a case, computed on first use, which is before the first implementation
// that supports the case runs (measure_one, or run_isolated before it forks): a case no selected
// implementation can run (a GPU suite on a CPU-only machine) costs no fp64 convolution, and an
// implementation that writes into its inputs cannot corrupt the reference.
class LazyReference {
 public:
  LazyReference(const CaseSpec& spec, CaseData& data, Dumper& dumper)
      : spec_(spec), data_(data), dumper_(dumper) {}
  // Throws the same error on every call once computing it failed (an fp16 overflow).
  const Reference& get() {
    if (!failure_.empty()) throw std::runtime_error(failure_);
    if (!ref_) {
      try {
        ref_ = compute_reference(spec_.problem, spec_.pass, data_);
      } catch (const std::runtime_error& e) {
        failure_ = e.what();
        throw;
      }
      dumper_.reference(spec_.problem, *ref_);
    }
    return *ref_;
  }

 private:
  const CaseSpec& spec_;
  CaseData& data_;
  Dumper& dumper_;
  std::optional<Reference> ref_;
  std::string failure_;
};

std::string rerun_hint(const RunOptions& options, const ConvProblem& pr) {
  return "; rerun with --seed " + std::to_string(options.seed) + " --problem " + pr.key();
}

// One candidate's result, and whether it is a lasting answer: not one of a passing failure (a
// lost CUDA context, the harness's own fork failure), which keeps the case out of tuning
// databases (Case::complete).
struct Outcome {
  Result result;
  bool lasting = true;
};

// Why `b` does not run on this case (unavailable here, or it declines the shape), or nullopt
// when it runs.
std::optional<Outcome> declined(const Backward& b, const CaseSpec& spec) {
  Support s = b.available();
  if (s.ok) s = b.supports(spec.problem, spec.pass);
  if (s.ok) return std::nullopt;
  Result result;
  result.impl = b.name();
  result.status = s.transient ? Status::error : Status::unsupported;
  result.why = s.why;
  return Outcome{std::move(result), !s.transient};
}

// Plans, validates and times an implementation that supports the case (declined() said so).
//
// What is checked: the first call's output against the fp64 reference (computed before any
// implementation runs, so that one writing into its inputs cannot corrupt it); the inputs after
// every implementation (a change is `incorrect`, and the seed's data is put back for the next
// one); the output of a second call (the last timed call, or with validate_only one more call),
// outputs NaN-poisoned before it, so that a plan that goes wrong when warm or races under
// repetition is caught; and determinism, measured: the two checked calls must agree bit for bit.
Result measure_one(const Backward& b, const CaseSpec& spec, CaseData& data, LazyReference& ref,
                   const TimingSettings& timing, const RunOptions& options, Dumper& dumper) {
  const ConvProblem& pr = spec.problem;
  Result result;
  result.impl = b.name();
  auto decline = [&](Status status, std::string why) {
    result.status = status;
    result.why = std::move(why);
    return result;
  };
  const std::string rerun = rerun_hint(options, pr);
  try {
    const Reference& reference = ref.get();
    std::unique_ptr<Plan> plan = b.plan(pr, spec.pass);
    result.workspace_bytes = plan->workspace_bytes();
    result.deterministic = plan->deterministic();
    result.detail = plan->detail();
    Workspace workspace(plan->host_workspace_bytes());  // backward.h's workspace contract
    void* ws = workspace.data.get();
    Tensors t = data.tensors();
    // One call: timed by the plan itself (CUDA events) or on the host clock around run().
    auto call = [&]() -> double {
      if (plan->times_itself()) return plan->run_timed_ms(t, ws);
      const auto start = Clock::now();
      plan->run(t, ws);
      return ms_since(start);
    };
    // Whether the inputs are still the seed's (restoring them when not).
    auto inputs_changed = [&](const char* when) -> std::optional<Result> {
      const std::string changed = data.restore_inputs(pr);
      if (changed.empty()) return std::nullopt;
      return decline(Status::incorrect, std::string("wrote into its input ") + changed + " (" +
                                            when + "; restored for the next implementation)" +
                                            rerun);
    };

    data.poison_outputs();
    plan->upload(t);
    const double single_ms = call();
    plan->download(t);
    if (auto r = inputs_changed("first call")) return *r;
    const double plan_factor = plan->tolerance_factor();
    const double factor = plan_factor > 0 ? plan_factor : b.tolerance_factor(spec.pass);
    result.error = check(pr, spec.pass, data, reference, factor);
    dumper.outputs(pr, b.name(), data);
    if (!result.error->ok()) return decline(Status::incorrect, result.error->failure + rerun);
    const Outputs first(data);

    // The second checked call's output (outputs poisoned before it, downloaded after it).
    auto check_again = [&](const char* which) -> std::optional<Result> {
      plan->download(t);
      if (auto r = inputs_changed(which)) return r;
      const ErrorStats again = check(pr, spec.pass, data, reference, factor);
      if (!again.ok()) {
        result.error = again;
        return decline(Status::incorrect, std::string(which) + ": " + again.failure + rerun);
      }
      if (const std::string where = first_difference(pr, first, data); !where.empty()) {
        result.deterministic = false;
        result.detail += std::string(result.detail.empty() ? "" : "; ") +
                         "two calls with the same inputs differed bit for bit (first at " + where +
                         ")";
      }
      return std::nullopt;
    };
    auto poison_before_call = [&] {
      data.poison_outputs();
      plan->upload(t);
    };

    if (options.validate_only) {
      poison_before_call();
      call();
      if (auto r = check_again("second call")) return *r;
      return result;
    }
    if (single_ms > timing.max_seconds_per_case * 1e3) {
      return decline(Status::timeout, "one call took " + std::to_string(single_ms / 1e3) +
                                          " s, over max_seconds_per_case " +
                                          std::to_string(timing.max_seconds_per_case));
    }
    bool last_poisoned = false;
    // measure() times a call on the host clock itself when the call says so (a negative figure).
    result.time = measure(
        b.name(),
        [&]() -> double {
          if (plan->times_itself()) return plan->run_timed_ms(t, ws);
          plan->run(t, ws);
          return -1.0;
        },
        timing,
        [&] {
          poison_before_call();
          last_poisoned = true;
        });
    result.gflops = pr.flops() / (result.time->median * 1e6);
    // Once more: a device plan's detail gives figures of its last timed call (db's share).
    result.detail = plan->detail();
    if (!last_poisoned) {  // not expected (measure counts its calls); check one more call then
      poison_before_call();
      call();
    }
    if (auto r = check_again("last timed call")) return *r;
  } catch (const std::bad_alloc&) {
    return decline(Status::error, "out of memory");
  } catch (const std::exception& e) {
    return decline(Status::error, e.what());
  }
  return result;
}

// measure_one in a child process (isolate.h): a crash is `crashed`, no answer within the
// candidate's limit is `timeout`, and this process goes on. The reference is computed here,
// before the fork, so that every child inherits it instead of computing it again; the child
// inherits the case's data too, and whatever it writes there stays in the child. nullopt when
// options.stop was raised while waiting (the child is killed and the case incomplete).
std::optional<Outcome> run_isolated(const Backward& b, const CaseSpec& spec, CaseData& data,
                                    LazyReference& ref, const TimingSettings& timing,
                                    const RunOptions& options, Dumper& dumper) {
  try {
    ref.get();
  } catch (const std::exception&) {
    // out of memory: the child meets it again in measure_one and records it
  }
  const int team = threads();
  auto work = [&]() -> std::string {
    set_threads(team);  // OpenMP's per-thread settings were the caller's thread's (isolate.h)
    const Result r = measure_one(b, spec, data, ref, timing, options, dumper);
    const nlohmann::json answer = {{"result", to_json(r)}, {"dumped", dumper.outputs_of(b.name())}};
    // A library's message with invalid UTF-8 must not lose the whole result.
    return answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  const double limit = candidate_timeout_seconds(timing, options);
  Result result;
  result.impl = b.name();
  ChildOutcome outcome;
  try {
    outcome = run_in_child(work, limit, options.stop);
  } catch (const std::exception& e) {  // no pipe or no fork: the harness's failure, not b's
    result.status = Status::error;
    result.why = e.what();
    return Outcome{std::move(result), false};  // keep it out of tuning databases
  }
  const std::string rerun = rerun_hint(options, spec.problem);
  switch (outcome.ending) {
    case ChildOutcome::Ending::stopped:
      return std::nullopt;
    case ChildOutcome::Ending::timed_out:
      result.status = Status::timeout;
      result.why =
          outcome.why + " (the limit of one isolated candidate, --candidate-timeout)" + rerun;
      return Outcome{std::move(result)};
    case ChildOutcome::Ending::crashed:
      result.status = Status::crashed;
      result.why = outcome.why + rerun;
      return Outcome{std::move(result)};
    case ChildOutcome::Ending::answered:
      break;
  }
  try {
    const nlohmann::json answer = nlohmann::json::parse(outcome.answer);
    result = result_from_json(answer.at("result"), "result");
    dumper.add_outputs(b.name(), answer.at("dumped"));
  } catch (const std::exception& e) {
    result = Result{};
    result.impl = b.name();
    result.status = Status::error;
    result.why = std::string("the isolated candidate's answer could not be read: ") + e.what();
    // a harness failure, not the implementation's: keep it out of databases
    return Outcome{std::move(result), false};
  }
  return Outcome{std::move(result)};
}

}  // namespace

Case run_case(const CaseSpec& spec, const std::vector<const Backward*>& impls,
              const TimingSettings& timing, const RunOptions& options, int case_index) {
  Case c;
  c.name = spec.name;
  c.problem = spec.problem;
  c.pass = spec.pass;
  c.count = spec.count;
  c.flops = spec.problem.flops();
  c.seed = options.seed;
  // The case's data is checked against the memory available before it is allocated (see
  // Workspace), and a case whose data does not fit is recorded, not the end of the suite.
  std::optional<CaseData> case_data;
  std::string no_memory;
  try {
    require_memory(CaseData::bytes_needed(spec.problem, spec.pass),
                   "the case's inputs, outputs and reference");
    case_data.emplace(spec.problem, spec.pass, options.seed);
  } catch (const OutOfMemory& e) {
    no_memory = e.what();
  } catch (const std::bad_alloc&) {
    no_memory = "out of memory: the case's inputs, outputs and reference";
  }
  if (!case_data) {
    for (const Backward* b : impls) {
      Result r;
      r.impl = b->name();
      r.status = Status::error;
      r.why = no_memory;
      c.results.push_back(std::move(r));
    }
    c.complete = false;  // memory may be free on a later run: keep it out of tuning databases
    return c;
  }
  CaseData& data = *case_data;
  Dumper dumper(options.dump_dir, case_index, spec);
  dumper.inputs(spec.problem, data);
  LazyReference ref(spec, data, dumper);
  const std::vector<Candidate> candidates = resolve(impls, spec.problem, spec.pass);
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& candidate = candidates[i];
    const Backward& m = *candidate.impl;
    if (options.stop && options.stop->load()) {
      c.complete = false;
      c.interrupted = true;
      break;
    }
    std::optional<Outcome> outcome = declined(m, spec);
    if (!outcome && options.isolate && m.device() == Device::cpu) {
      outcome = run_isolated(m, spec, data, ref, timing, options, dumper);
      if (!outcome) {  // stopped while it ran
        c.complete = false;
        c.interrupted = true;
        break;
      }
    }
    if (!outcome) outcome = Outcome{measure_one(m, spec, data, ref, timing, options, dumper)};
    outcome->result.family = candidate.family;
    outcome->result.strategy = m.strategy();
    c.results.push_back(std::move(outcome->result));
    if (!outcome->lasting) c.complete = false;
    // A passing failure ends the case once what was selected with it (a family's other
    // members) has run.
    const bool selected_with_next = i + 1 < candidates.size() && !candidate.family.empty() &&
                                    candidates[i + 1].family == candidate.family;
    if (!c.complete && !selected_with_next) break;
  }
  c.best = choose_best(c.results);
  dumper.finish(options.dump_dir);
  return c;
}

std::vector<const Backward*> run_selection(const Suite& suite, const RunOptions& options) {
  const std::vector<const Backward*> impls =
      options.impls.empty() ? select_impls(suite.impls, false) : select_impls(options.impls, true);
  if (impls.empty()) throw SelectionError(suite.file + ": impls: no implementation matches");
  return impls;
}

void check_environment(const std::vector<const Backward*>& impls) {
  std::string errors;
  for (const Backward* b : impls) {
    const std::string error = b->environment_error();
    // One that will not run (no device): what it would read does not matter. Asked only where
    // there is an error, as availability may start a device's runtime.
    if (error.empty() || !b->available().ok) continue;
    if (errors.find(error) == std::string::npos) errors += (errors.empty() ? "" : "; ") + error;
  }
  if (!errors.empty()) throw SelectionError("environment: " + errors);
}

Report run_suite(const Suite& suite, const RunOptions& options,
                 const std::function<void(const Report&)>& on_case) {
  const std::vector<const Backward*> impls = run_selection(suite, options);
  check_environment(impls);
  const std::vector<CaseSpec> all_cases = expand_cases(suite, options);
  // The share this run measures; a case keeps its index in the whole suite (dump folders, and
  // the order `convbp merge` puts shards' cases back in).
  const std::vector<std::size_t> indices = selected_cases(all_cases, options);
  std::vector<CaseSpec> cases;
  for (std::size_t i : indices) cases.push_back(all_cases[i]);
  TimingSettings timing = suite.timing;
  if (options.reps) timing.reps = *options.reps;

  Report report;
  report.context = run_context(threads());
  std::vector<std::string> names;
  for (const Backward* b : impls) names.push_back(b->name());
  report.settings = {{"config", suite.file},
                     {"suite", suite.name},
                     {"source", suite.source},
                     {"impls", names},
                     {"seed", options.seed},
                     {"validate_only", options.validate_only},
                     {"isolate", options.isolate},
                     {"candidate_timeout_s",
                      options.isolate ? nlohmann::json(candidate_timeout_seconds(timing, options))
                                      : nlohmann::json(nullptr)},
                     {"timing",
                      {{"warmup", timing.warmup},
                       {"reps", timing.reps},
                       {"max_seconds_per_case", timing.max_seconds_per_case},
                       {"min_rep_seconds", timing.min_rep_seconds}}}};
  if (options.shard) {
    report.settings["shard"] = {{"index", options.shard->index},
                                {"count", options.shard->count},
                                {"suite_cases", all_cases.size()},
                                {"case_indices", nlohmann::json::array()}};
  }
  report.complete = false;

  const auto start = Clock::now();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    if (options.stop && options.stop->load()) break;
    if (options.progress) {
      const double elapsed = ms_since(start) / 1e3;
      std::string eta =
          i == 0 ? "" : ", ~" + std::to_string(int(elapsed / i * (cases.size() - i))) + " s left";
      std::fprintf(stderr, "\r\033[K[%zu/%zu] %s %s (%d s elapsed%s)", i + 1, cases.size(),
                   cases[i].name.c_str(), to_string(cases[i].pass), int(elapsed), eta.c_str());
      std::fflush(stderr);
    }
    std::optional<Case> known = options.lookup ? options.lookup(cases[i], impls) : std::nullopt;
    Case c =
        known ? std::move(*known) : run_case(cases[i], impls, timing, options, int(indices[i]));
    // A case cut short by a signal keeps the results it finished, marked interrupted (its best
    // is of those alone; tune stores no incomplete case).
    if (!c.results.empty()) {
      report.cases.push_back(std::move(c));
      // One per case in the report: where it stands in the whole suite (`convbp merge`).
      if (options.shard) report.settings["shard"]["case_indices"].push_back(indices[i]);
    }
    if (options.stop && options.stop->load()) break;
    if (on_case && i + 1 < cases.size()) on_case(report);
  }
  if (options.progress) {
    std::fprintf(stderr, "\r\033[K%zu cases in %.1f s\n", report.cases.size(),
                 ms_since(start) / 1e3);
  }
  report.complete = !(options.stop && options.stop->load());
  return report;
}

}  // namespace convbp
