// The opt-in knob-space search behind cudnn.search.fp32|.tf32|.fp32acc (engine_api.h).
//
// cuDNN's heuristics offer a few configurations per engine; each engine describes its whole knob
// space (CUDNN_ATTR_ENGINE_KNOB_INFO: per knob a minimum, a maximum and a stride). Within a time
// budget per (problem, pass, precision), the search times on the device:
//   1. the heuristics' own configurations of the precision (the mark to beat);
//   2. their one-knob neighbours, then every usable engine's default configuration (no knob
//      set) and its one-knob neighbours; each configuration faster than every one timed before
//      puts its own neighbours first (a greedy descent);
//   3. random points of the whole space, until the budget is spent or no new point turns up.
// Runtime-compiled engines come after the others (compiling a kernel takes seconds), and not
// at all under CONVBP_CUDNN_RUNTIME_COMPILED=0. The configurations the heuristics did not
// offer that ran within 5% of their best (at most kKeep) become the family's members, which the
// harness then validates and times as any other; the search's own timing only ranks.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include "dtype.h"
#include "engine_api.h"

namespace convbp::cudnn {
namespace {

constexpr double kDefaultBudgetSeconds = 20;
constexpr std::size_t kKeep = 4;      // members kept per search
constexpr double kKeepWithin = 1.05;  // of the heuristics' best, in the search's timing
constexpr std::size_t kMaxValuesPerKnob = 12;
constexpr int kTimedCalls = 3;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string ms_text(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g ms", ms);
  return buf;
}

// One knob of an engine, as CUDNN_ATTR_ENGINE_KNOB_INFO describes it, and the values tried.
struct Knob {
  std::int64_t type = 0;
  std::vector<std::int64_t> values;
};

// min, min + stride, ..., max; a long range is thinned to its ends and the powers of two on the
// stride's grid between them (tile sizes, split factors and stage counts live there).
std::vector<std::int64_t> knob_values(std::int64_t min, std::int64_t max, std::int64_t stride) {
  stride = std::max<std::int64_t>(stride, 1);
  if (max < min) return {min};
  const std::int64_t count = (max - min) / stride + 1;
  std::vector<std::int64_t> values;
  if (count <= std::int64_t(kMaxValuesPerKnob)) {
    for (std::int64_t v = min; v <= max; v += stride) values.push_back(v);
    return values;
  }
  values = {min, max};
  for (std::int64_t p = 1; p > 0 && p <= max && values.size() < kMaxValuesPerKnob; p *= 2) {
    if (p > min && p < max && (p - min) % stride == 0) values.push_back(p);
  }
  std::sort(values.begin(), values.end());
  return values;
}

std::vector<Knob> knobs_of(const Descriptor& engine) {
  std::vector<Descriptor> infos;
  std::vector<void*> raw;
  for (int i = 0; i < CUDNN_KNOB_TYPE_COUNTS; ++i) {
    infos.push_back(make_descriptor(CUDNN_BACKEND_KNOB_INFO_DESCRIPTOR));
    raw.push_back(infos.back().get());
  }
  const auto n =
      std::min<std::int64_t>(get(engine, CUDNN_ATTR_ENGINE_KNOB_INFO, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                 std::int64_t(raw.size()), raw.data()),
                             std::int64_t(raw.size()));
  std::vector<Knob> knobs;
  for (std::int64_t i = 0; i < n; ++i) {
    cudnnBackendKnobType_t type{};
    std::int64_t min = 0, max = 0, stride = 0;
    get(infos[i], CUDNN_ATTR_KNOB_INFO_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &type);
    get(infos[i], CUDNN_ATTR_KNOB_INFO_MINIMUM_VALUE, CUDNN_TYPE_INT64, 1, &min);
    get(infos[i], CUDNN_ATTR_KNOB_INFO_MAXIMUM_VALUE, CUDNN_TYPE_INT64, 1, &max);
    get(infos[i], CUDNN_ATTR_KNOB_INFO_STRIDE, CUDNN_TYPE_INT64, 1, &stride);
    knobs.push_back({std::int64_t(type), knob_values(min, max, stride)});
  }
  std::sort(knobs.begin(), knobs.end(), [](auto& a, auto& b) { return a.type < b.type; });
  return knobs;
}

// An engine the search may configure: usable in the precision on this graph.
struct Engine {
  std::int64_t id = 0;
  std::vector<Knob> knobs;
  bool runtime_compiled = false;
  double space = 1;  // configurations with every knob set (a double: it may be astronomical)
};

std::optional<Engine> usable_engine(const std::shared_ptr<const Graph>& graph, std::int64_t id,
                                    Precision precision, const ConvProblem& pr, Pass pass) {
  if (!asymmetric_padding_support(id, pr, pass).ok) return std::nullopt;
  Candidate probe;
  probe.graph = graph;
  probe.choice.engine = id;
  probe.engine = make_descriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  set_descriptor(probe.engine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, graph->graph);
  set(probe.engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &id);
  clear_last_error();
  if (cudnnBackendFinalize(probe.engine.get()) != CUDNN_STATUS_SUCCESS) return std::nullopt;
  read_notes(probe.engine, probe);
  if (precision_of(probe, pr.dtype) != precision) return std::nullopt;
  if (probe.runtime_compiled && !runtime_compiled_wanted()) return std::nullopt;
  Engine e{id, knobs_of(probe.engine), probe.runtime_compiled, 1};
  for (const Knob& k : e.knobs) e.space *= double(k.values.size());
  return e;
}

Choice with_knob(Choice c, std::int64_t type, std::int64_t value) {
  auto it =
      std::find_if(c.knobs.begin(), c.knobs.end(), [&](auto& kv) { return kv.first >= type; });
  if (it != c.knobs.end() && it->first == type) {
    it->second = value;
  } else {
    c.knobs.insert(it, {type, value});
  }
  return c;
}

std::vector<Choice> neighbours(const Choice& c, const Engine& e) {
  std::vector<Choice> out;
  for (const Knob& k : e.knobs) {
    auto it =
        std::find_if(c.knobs.begin(), c.knobs.end(), [&](auto& kv) { return kv.first == k.type; });
    for (std::int64_t v : k.values) {
      if (it == c.knobs.end() || it->second != v) out.push_back(with_knob(c, k.type, v));
    }
  }
  return out;
}

// Filled device tensors for one (problem, pass), and a workspace that grows on demand: every
// configuration is timed on the same memory.
class Bench {
 public:
  Bench(const ConvProblem& pr, Pass pass) : pass_(pass) {
    std::mt19937_64 rng(std::hash<std::string>{}(pr.key()));
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    const std::size_t bytes = dtype_size(pr.dtype);
    auto filled = [&](std::int64_t elems) {
      std::vector<std::uint8_t> host(std::size_t(elems) * bytes);
      for (std::int64_t i = 0; i < elems; ++i) {
        const float v = uniform(rng);
        if (pr.dtype == DType::bf16) {
          const bfloat16 b = to_bfloat16(v);
          std::memcpy(host.data() + i * bytes, &b, bytes);
        } else if (pr.dtype == DType::f16) {
          const float16 h = to_float16(v);
          std::memcpy(host.data() + i * bytes, &h, bytes);
        } else {
          std::memcpy(host.data() + i * bytes, &v, bytes);
        }
      }
      DeviceBuffer buffer(host.size());
      CONVBP_CHECK(cudaMemcpy(buffer.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
      return buffer;
    };
    dy_ = filled(pr.y_elems());
    if (pass == Pass::data) {
      w_ = filled(pr.w_elems());
      out_ = DeviceBuffer(std::size_t(pr.x_elems()) * bytes);
    } else {
      x_ = filled(pr.x_elems());
      out_ = DeviceBuffer(std::size_t(pr.w_elems()) * bytes);
    }
    CONVBP_CHECK(cudaEventCreate(&start_));
    CONVBP_CHECK(cudaEventCreate(&stop_));
    std::size_t free = 0, total = 0;
    CONVBP_CHECK(cudaMemGetInfo(&free, &total));
    workspace_limit_ = free / 2;
  }
  ~Bench() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;

  std::size_t workspace_limit() const { return workspace_limit_; }

  // The configuration's fastest of kTimedCalls calls after one untimed call (which also shows
  // that it runs); fewer calls when the first is already `give_up_ms` or slower.
  double time_ms(const Candidate& c, double give_up_ms) {
    if (c.workspace > workspace_.bytes()) {
      workspace_ = DeviceBuffer();
      workspace_ = DeviceBuffer(c.workspace);
    }
    Tensors t;
    t.x = x_.get();
    t.w = w_.get();
    t.dy = dy_.get();
    (pass_ == Pass::data ? t.dx : t.dw) = out_.get();
    const Descriptor pack = variant_pack(pass_, t, workspace_.get());
    CONVBP_CHECK(cudnnBackendExecute(handle(), c.plan.get(), pack.get()));
    CONVBP_CHECK(cudaDeviceSynchronize());
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < kTimedCalls; ++i) {
      CONVBP_CHECK(cudaEventRecord(start_, nullptr));
      CONVBP_CHECK(cudnnBackendExecute(handle(), c.plan.get(), pack.get()));
      CONVBP_CHECK(cudaEventRecord(stop_, nullptr));
      CONVBP_CHECK(cudaEventSynchronize(stop_));
      float ms = 0;
      CONVBP_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
      best = std::min(best, double(ms));
      if (best >= give_up_ms) break;
    }
    return best;
  }

 private:
  Pass pass_;
  DeviceBuffer x_, w_, dy_, out_, workspace_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::size_t workspace_limit_ = 0;
};

struct Timed {
  std::shared_ptr<Candidate> candidate;
  double ms = 0;
  bool offered = false;
};

// The budget from CONVBP_CUDNN_SEARCH_S; throws naming the variable and value when it is not a
// number of seconds in (0, 86400].
double budget_seconds() {
  const char* v = std::getenv("CONVBP_CUDNN_SEARCH_S");
  if (!v || !*v) return kDefaultBudgetSeconds;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  if (*end != '\0' || !(s > 0) || s > 86400) {
    throw std::invalid_argument(std::string("CONVBP_CUDNN_SEARCH_S='") + v +
                                "' is not a number of seconds in (0, 86400]");
  }
  return s;
}

std::shared_ptr<const SearchResult> run_search(const ConvProblem& pr, Pass pass,
                                               Precision precision) {
  auto out = std::make_shared<SearchResult>();
  const auto start = Clock::now();
  try {
    out->budget_s = budget_seconds();
  } catch (const std::exception& e) {
    out->error = e.what();
    return out;
  }
  const auto o = offer(pr, pass);
  if (!o->error.empty()) {
    out->error = o->error;
    return out;
  }
  std::vector<Timed> timed;
  std::set<std::string> seen;
  int not_finalized = 0, too_large = 0, failed = 0;
  std::string stopped;
  try {
    Bench bench(pr, pass);
    double best_ms = std::numeric_limits<double>::infinity();
    auto try_one = [&](std::shared_ptr<Candidate> c, bool offered) {
      if (c->workspace > bench.workspace_limit()) {
        ++too_large;
        return false;
      }
      double ms = 0;
      try {
        ms = bench.time_ms(*c, 3 * best_ms);
      } catch (const std::exception&) {
        ++failed;
        if (std::string lost = context_lost(); !lost.empty()) throw;
        return false;
      }
      timed.push_back({c, ms, offered});
      if (ms >= best_ms) return false;
      best_ms = ms;
      return true;
    };

    // 1. The heuristics' configurations.
    for (const Candidate& c : o->list(precision)) {
      seen.insert(c.choice.tag());
      try_one(std::make_shared<Candidate>(c), true);
    }
    out->heuristics_timed = int(timed.size());

    // The engines usable in this precision, and their knobs.
    std::int64_t count = 0;
    get(o->graph->graph, CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT, CUDNN_TYPE_INT64, 1,
        &count);
    std::map<std::int64_t, Engine> engines;
    for (std::int64_t id = 0; id < count; ++id) {
      try {
        if (auto e = usable_engine(o->graph, id, precision, pr, pass)) engines[id] = *e;
      } catch (const std::exception&) {
        // An engine whose knobs cannot be read is not searched.
      }
    }
    out->engines = int(engines.size());
    for (const auto& [id, e] : engines) out->space += e.space;

    // 2. Neighbours of the heuristics' configurations, then each engine's default and its
    // neighbours; runtime-compiled engines' after all others.
    std::deque<Choice> queue, compiled_queue;
    auto enqueue = [&](const Choice& c, bool front) {
      const auto it = engines.find(c.engine);
      if (it == engines.end() || seen.count(c.tag())) return;
      auto& q = it->second.runtime_compiled ? compiled_queue : queue;
      front ? q.push_front(c) : q.push_back(c);
    };
    for (const Candidate& c : o->list(precision)) {
      if (auto it = engines.find(c.choice.engine); it != engines.end()) {
        for (const Choice& n : neighbours(c.choice, it->second)) enqueue(n, false);
      }
    }
    for (const auto& [id, e] : engines) {
      enqueue(Choice{id, {}}, false);
      for (const Choice& n : neighbours(Choice{id, {}}, e)) enqueue(n, false);
    }

    // 3. Random points of the space, seeded by the problem.
    std::mt19937_64 rng(std::hash<std::string>{}(cache_key(pr, pass)));
    std::vector<const Engine*> list;
    for (const auto& [id, e] : engines) list.push_back(&e);
    auto random_choice = [&]() -> std::optional<Choice> {
      for (int attempt = 0; attempt < 256 && !list.empty(); ++attempt) {
        const Engine& e = *list[rng() % list.size()];
        Choice c{e.id, {}};
        for (const Knob& k : e.knobs)
          c.knobs.emplace_back(k.type, k.values[rng() % k.values.size()]);
        if (!seen.count(c.tag())) return c;
      }
      return std::nullopt;
    };

    while (true) {
      if (seconds_since(start) >= out->budget_s) {
        stopped = "the budget spent";
        break;
      }
      std::optional<Choice> next;
      for (auto* q : {&queue, &compiled_queue}) {
        while (!next && !q->empty()) {
          if (!seen.count(q->front().tag())) next = q->front();
          q->pop_front();
        }
      }
      if (!next) next = random_choice();
      if (!next) {
        stopped = "256 random draws found no untried configuration";
        break;
      }
      seen.insert(next->tag());
      ++out->tried;
      std::shared_ptr<Candidate> c;
      try {
        c = std::make_shared<Candidate>(build(o->graph, *next));
      } catch (const std::exception&) {
        ++not_finalized;
        continue;
      }
      c->source = "knob search";
      if (try_one(c, false)) {
        for (const Choice& n : neighbours(*next, engines.at(next->engine))) enqueue(n, true);
      }
    }
  } catch (const std::exception& e) {
    stopped = std::string("stopped by an error: ") + e.what();
  }
  out->seconds = seconds_since(start);

  // What the heuristics' best did, and what the search found besides.
  std::sort(timed.begin(), timed.end(), [](auto& a, auto& b) { return a.ms < b.ms; });
  const Timed* heuristics_best = nullptr;
  for (const Timed& t : timed) {
    if (t.offered) {
      heuristics_best = &t;
      break;
    }
  }
  int unoffered = 0;
  for (const Timed& t : timed) unoffered += !t.offered;
  const Timed* found_best = nullptr;
  std::vector<const Timed*> kept;
  for (const Timed& t : timed) {
    if (t.offered) continue;
    if (!found_best) found_best = &t;
    if (kept.size() >= kKeep) break;
    if (heuristics_best && t.ms > kKeepWithin * heuristics_best->ms) break;
    kept.push_back(&t);
  }

  std::ostringstream s;
  char took[64];  // "8.1 s of a 20 s budget"
  std::snprintf(took, sizeof took, "%.1f s of a %.3g s budget", out->seconds, out->budget_s);
  const std::string spent = took + (" (" + (stopped.empty() ? std::string("done") : stopped) + ")");
  s << "knob search over " << out->engines << " " << to_string(precision) << " engines ("
    << out->space << " configurations with every knob set): " << out->tried
    << " configurations beyond the heuristics' " << out->heuristics_timed << " tried in " << spent;
  if (not_finalized) s << ", " << not_finalized << " not built by cuDNN";
  if (too_large) s << ", " << too_large << " over the workspace limit";
  if (failed) s << ", " << failed << " failed to run";
  s << "; heuristics' best: "
    << (heuristics_best
            ? heuristics_best->candidate->choice.tag() + " " + ms_text(heuristics_best->ms)
            : std::string("none"));
  s << "; " << unoffered << " timed that the heuristics did not offer";
  if (found_best) {
    s << ", the fastest " << found_best->candidate->choice.tag() << " " << ms_text(found_best->ms);
    if (heuristics_best) {
      char ratio[48];
      std::snprintf(ratio, sizeof ratio, " (%.2fx the heuristics' best's speed)",
                    heuristics_best->ms / found_best->ms);
      s << ratio;
    }
  }
  out->summary = s.str();
  for (std::size_t i = 0; i < kept.size(); ++i) {
    std::ostringstream src;
    src << "knob search #" << i + 1 << ": " << ms_text(kept[i]->ms) << " in the search, against "
        << (heuristics_best ? ms_text(heuristics_best->ms) + " for the heuristics' best"
                            : std::string("no heuristic offer"))
        << "; " << out->tried << " configurations tried in " << spent;
    kept[i]->candidate->source = src.str();
    out->found.push_back(kept[i]->candidate);
    adopt(pr, pass, precision, kept[i]->candidate);
  }
  std::fprintf(stderr, "\nconvbp: cuDNN %s %s: %s\n", pr.key().c_str(), to_string(pass),
               out->summary.c_str());
  return out;
}

}  // namespace

std::shared_ptr<const SearchResult> knob_search(const ConvProblem& pr, Pass pass,
                                                Precision precision) {
  static auto& cache = *new Recent<SearchResult>(8);
  const std::string key = cache_key(pr, pass) + "/" + to_string(precision);
  if (auto found = cache.find(key)) return found;
  return cache.put(key, run_search(pr, pass, precision));
}

}  // namespace convbp::cudnn
