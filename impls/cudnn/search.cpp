// The opt-in knob-space search behind cudnn.search.fp32|.tf32|.fp32acc (engine_api.h).
//
// cuDNN's heuristics offer a few configurations per engine; each engine describes its whole knob
// space (CUDNN_ATTR_ENGINE_KNOB_INFO: per knob a minimum, a maximum and a stride). Within a time
// budget per (problem, pass, precision), the search times on the device, every configuration
// with all of its engine's knobs set (an unset knob would take cuDNN's default, and so repeat a
// configuration under another name):
//   1. the heuristics' own configurations of the precision (the mark to beat);
//   2. their one-knob neighbours, then every usable engine's base configuration (each knob as
//      the heuristics set it for that engine, else its minimum) and its one-knob neighbours;
//      each configuration faster than every one timed before puts its own neighbours first (a
//      greedy descent);
//   3. random points of the space, until the budget is spent or 256 draws in a row find
//      nothing untried.
// Runtime-compiled engines come after the others in step 2 and not at all in step 3 (compiling
// a kernel takes seconds), and not at all under CONVBP_CUDNN_RUNTIME_COMPILED=0. The
// configurations the heuristics did not offer that ran faster than their best (at most kKeep)
// become the family's members, which the harness then validates and times as any other: the
// search's own timing only ranks.
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

// min, min + stride, ..., max; a range of more than kMaxValuesPerKnob values is thinned to its
// two ends and the powers of two on the stride's grid between them, smallest first, up to
// kMaxValuesPerKnob in all (tile sizes, split factors and CTA counts live there). Ranges near
// the int64 limits are counted in 128 bits.
std::vector<std::int64_t> knob_values(std::int64_t min, std::int64_t max, std::int64_t stride) {
  stride = std::max<std::int64_t>(stride, 1);
  if (max <= min) return {min};
  const __int128 count = (__int128(max) - min) / stride + 1;
  std::vector<std::int64_t> values;
  if (count <= __int128(kMaxValuesPerKnob)) {
    for (__int128 v = min; v <= max; v += stride) values.push_back(std::int64_t(v));
    return values;
  }
  values = {min, max};
  for (std::int64_t p = 1; p > 0 && p < max && values.size() < kMaxValuesPerKnob; p *= 2) {
    if (p > min && (__int128(p) - min) % stride == 0) values.push_back(p);
    if (p > std::numeric_limits<std::int64_t>::max() / 2) break;
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
  double grid = 1;  // configurations on the grid of knob_values() (a double: it may be huge)
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
  cudnnStatus_t finalized = CUDNN_STATUS_SUCCESS;
  {
    const auto held = lock_handles();  // the graph's handle (engine_api.cpp: finalize())
    finalized = cudnnBackendFinalize(probe.engine.get());
  }
  if (finalized != CUDNN_STATUS_SUCCESS) return std::nullopt;
  read_notes(probe.engine, probe);
  if (precision_of(probe, pr.dtype) != precision) return std::nullopt;
  if (probe.runtime_compiled && !runtime_compiled_wanted()) return std::nullopt;
  Engine e{id, knobs_of(probe.engine), probe.runtime_compiled, 1};
  for (const Knob& k : e.knobs) e.grid *= double(k.values.size());
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

// `c` with every knob of its engine set: as in `base` where `c` leaves it unset, else at the
// knob's minimum. Knobs the engine does not describe are kept as they are.
Choice complete(Choice c, const Engine& e, const Choice* base = nullptr) {
  for (const Knob& k : e.knobs) {
    auto has = [&](const Choice& x) {
      return std::find_if(x.knobs.begin(), x.knobs.end(),
                          [&](auto& kv) { return kv.first == k.type; });
    };
    if (has(c) != c.knobs.end()) continue;
    if (base && has(*base) != base->knobs.end()) {
      c = with_knob(c, k.type, has(*base)->second);
    } else {
      c = with_knob(c, k.type, k.values.front());
    }
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
    // Each call on the handle's default stream: a thread that moves the handle to its own
    // stream moves it back before it lets go of lock_handles(), so holding it for the call is
    // enough (not across the waits).
    const auto execute = [&] {
      const auto held = lock_handles();
      CONVBP_CHECK(cudnnBackendExecute(handle(), c.plan.get(), pack.get()));
    };
    execute();
    CONVBP_CHECK(cudaDeviceSynchronize());
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < kTimedCalls; ++i) {
      CONVBP_CHECK(cudaEventRecord(start_, nullptr));
      execute();
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
  Choice choice;
  double ms = 0;
  bool offered = false;
  std::shared_ptr<Candidate> candidate;  // kept for the fastest unoffered only (memory)
};

std::shared_ptr<const SearchResult> run_search(const ConvProblem& pr, Pass pass,
                                               Precision precision, double budget_s) {
  auto out = std::make_shared<SearchResult>();
  out->budget_s = budget_s;
  const auto o = offer(pr, pass);  // the heuristics' time is the offer's, not the budget's
  if (!o->error.empty()) {
    out->error = o->error;
    return out;
  }
  const auto start = Clock::now();
  auto budget_left = [&] { return seconds_since(start) < budget_s; };
  std::vector<Timed> timed;
  std::set<std::string> seen;
  int not_finalized = 0, too_large = 0, failed = 0;
  std::string stopped, lost;
  try {
    Bench bench(pr, pass);
    double best_ms = std::numeric_limits<double>::infinity();
    // Times c; true when it is the fastest so far.
    auto try_one = [&](const Choice& choice, std::shared_ptr<Candidate> c, bool offered) {
      if (c->workspace > bench.workspace_limit()) {
        ++too_large;
        return false;
      }
      double ms = 0;
      try {
        ms = bench.time_ms(*c, 3 * best_ms);
      } catch (const std::exception&) {
        ++failed;
        if (!context_lost().empty()) throw;
        return false;
      }
      timed.push_back({choice, ms, offered, offered ? nullptr : std::move(c)});
      // Plans are kept for the 2 x kKeep fastest unoffered configurations only.
      std::vector<Timed*> held;
      for (Timed& t : timed) {
        if (t.candidate) held.push_back(&t);
      }
      if (held.size() > 2 * kKeep) {
        (*std::max_element(held.begin(), held.end(), [](auto* a, auto* b) {
          return a->ms < b->ms;
        }))->candidate.reset();
      }
      if (ms >= best_ms) return false;
      best_ms = ms;
      return true;
    };

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
    for (const auto& [id, e] : engines) out->grid += e.grid;

    // 1. The heuristics' configurations, known by their own tags and as completed.
    std::map<std::int64_t, Choice> offered_base;  // per engine: its first offer's knobs
    for (const Candidate& c : o->list(precision)) {
      seen.insert(c.choice.tag());
      if (auto it = engines.find(c.choice.engine); it != engines.end()) {
        seen.insert(complete(c.choice, it->second).tag());
        offered_base.emplace(c.choice.engine, c.choice);
      }
      try_one(c.choice, std::make_shared<Candidate>(c), true);
    }
    out->heuristics_timed = int(timed.size());

    // 2. Neighbours of the heuristics' configurations, then each engine's base configuration
    // and its neighbours; runtime-compiled engines' after all others.
    std::deque<Choice> queue, compiled_queue;
    auto enqueue = [&](const Choice& c, bool front) {
      const auto it = engines.find(c.engine);
      if (it == engines.end() || seen.count(c.tag())) return;
      auto& q = it->second.runtime_compiled ? compiled_queue : queue;
      front ? q.push_front(c) : q.push_back(c);
    };
    for (const Candidate& c : o->list(precision)) {
      if (auto it = engines.find(c.choice.engine); it != engines.end()) {
        for (const Choice& n : neighbours(complete(c.choice, it->second), it->second)) {
          enqueue(n, false);
        }
      }
    }
    for (const auto& [id, e] : engines) {
      const auto base = offered_base.find(id);
      const Choice c =
          complete(Choice{id, {}}, e, base == offered_base.end() ? nullptr : &base->second);
      enqueue(c, false);
      for (const Choice& n : neighbours(c, e)) enqueue(n, false);
    }

    // 3. Random points of the space, seeded by the problem (engines compiled at run time
    // excepted).
    std::mt19937_64 rng(std::hash<std::string>{}(cache_key(pr, pass)));
    std::vector<const Engine*> drawn;
    for (const auto& [id, e] : engines) {
      if (!e.runtime_compiled) drawn.push_back(&e);
    }
    auto random_choice = [&]() -> std::optional<Choice> {
      for (int attempt = 0; attempt < 256 && !drawn.empty(); ++attempt) {
        const Engine& e = *drawn[rng() % drawn.size()];
        Choice c{e.id, {}};
        for (const Knob& k : e.knobs) {
          c.knobs.emplace_back(k.type, k.values[rng() % k.values.size()]);
        }
        if (!seen.count(c.tag())) return c;
      }
      return std::nullopt;
    };

    while (true) {
      if (!budget_left()) {
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
      if (try_one(*next, c, false)) {
        for (const Choice& n : neighbours(*next, engines.at(next->engine))) enqueue(n, true);
      }
    }
  } catch (const std::exception& e) {
    stopped = std::string("stopped by an error: ") + e.what();
    lost = context_lost();
  }
  out->seconds = seconds_since(start);

  // What the heuristics' best did, and what the search found besides.
  std::stable_sort(timed.begin(), timed.end(), [](auto& a, auto& b) { return a.ms < b.ms; });
  const Timed* heuristics_best = nullptr;
  const Timed* found_best = nullptr;
  int unoffered = 0;
  for (const Timed& t : timed) {
    if (t.offered && !heuristics_best) heuristics_best = &t;
    if (!t.offered && !found_best) found_best = &t;
    unoffered += !t.offered;
  }
  std::vector<const Timed*> kept;
  for (const Timed& t : timed) {
    if (t.offered || !t.candidate) continue;
    if (kept.size() >= kKeep || (heuristics_best && t.ms >= heuristics_best->ms)) break;
    kept.push_back(&t);
  }

  char took[64];  // "8.1 s of a 20 s budget"
  std::snprintf(took, sizeof took, "%.1f s of a %.3g s budget", out->seconds, budget_s);
  const std::string spent = took + (" (" + stopped + ")");
  std::ostringstream s;
  s << "knob search over " << out->engines << " " << to_string(precision) << " engines ("
    << out->grid << " configurations on their knob grids): " << out->tried
    << " configurations beyond the heuristics' " << out->heuristics_timed << " tried in " << spent;
  if (not_finalized) s << ", " << not_finalized << " not built by cuDNN";
  if (too_large) s << ", " << too_large << " over the workspace limit";
  if (failed) s << ", " << failed << " failed to run";
  s << "; heuristics' best: "
    << (heuristics_best ? heuristics_best->choice.tag() + " " + ms_text(heuristics_best->ms)
                        : std::string("none ran"));
  s << "; " << unoffered << " timed that the heuristics did not offer";
  if (found_best) {
    s << ", the fastest " << found_best->choice.tag() << " " << ms_text(found_best->ms);
    if (heuristics_best) {
      char ratio[48];
      std::snprintf(ratio, sizeof ratio, " (%.2fx the heuristics' best's speed)",
                    heuristics_best->ms / found_best->ms);
      s << ratio;
    }
  }
  out->summary = s.str();
  std::fprintf(stderr, "\nconvbp: cuDNN %s %s: %s\n", pr.key().c_str(), to_string(pass),
               out->summary.c_str());
  if (!lost.empty()) {
    // Nothing measured in a lost context is offered: every later CUDA call fails with it.
    out->error = "the CUDA context was lost during the search (" + lost + "): " + out->summary;
    return out;
  }
  for (std::size_t i = 0; i < kept.size(); ++i) {
    std::ostringstream src;
    src << "knob search #" << i + 1 << ": " << ms_text(kept[i]->ms) << " in the search, against "
        << (heuristics_best ? ms_text(heuristics_best->ms) + " for the heuristics' best " +
                                  heuristics_best->choice.tag()
                            : std::string("no heuristic offer that ran"))
        << "; " << out->tried << " configurations tried in " << spent;
    kept[i]->candidate->source = src.str();
    out->found.push_back(kept[i]->candidate);
    adopt(pr, pass, precision, kept[i]->candidate);
  }
  return out;
}

}  // namespace

std::shared_ptr<const SearchResult> knob_search(const ConvProblem& pr, Pass pass,
                                                Precision precision) {
  double budget = 0;
  try {
    budget = search_budget_seconds();
  } catch (const std::exception& e) {
    auto out = std::make_shared<SearchResult>();
    out->error = e.what();
    return out;  // not kept: the next call reads the variable again
  }
  // One search at a time in the process: searches share the cuDNN handle and the device, and
  // each would skew the other's timing; a second caller of the same key waits for its answer.
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  static auto& cache = *new Recent<SearchResult>(8);
  char budget_text[32];
  std::snprintf(budget_text, sizeof budget_text, "%.17g", budget);
  const std::string key =
      cache_key(pr, pass) + "/" + to_string(precision) + "/" + budget_text + " s";
  if (auto found = cache.find(key)) return found;
  return cache.put(key, run_search(pr, pass, precision, budget));
}

}  // namespace convbp::cudnn
