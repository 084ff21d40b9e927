#include "merge.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <tuple>

#include "io.h"
#include "json_input.h"

namespace convbp {

using nlohmann::json;

MergeKind merge_kind(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::exception& e) {
    throw MergeError(path + ": cannot read: " + e.what());
  }
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) throw MergeError(path + ": not a JSON document");
  const json* schema = doc.is_object() && doc.contains("schema") ? &doc["schema"] : nullptr;
  if (schema && *schema == "convbp.report/1") return MergeKind::report;
  if (schema && *schema == kTuningSchema) return MergeKind::tuning;
  throw MergeError(path + ": $.schema: expected \"convbp.report/1\" (a report) or \"" +
                   std::string(kTuningSchema) + "\" (a tuning database), got " +
                   (schema ? schema->dump() : std::string("nothing")));
}

namespace {

struct ShardInfo {
  int index = 0, count = 1;
  std::size_t suite_cases = 0;
  std::vector<std::size_t> case_indices;
};

// settings.shard of a report, checked; nullopt when the report is not a shard.
std::optional<ShardInfo> shard_of(const ReportInput& in) {
  const json& settings = in.report.settings;
  if (!settings.is_object() || !settings.contains("shard")) return std::nullopt;
  const json& s = settings["shard"];
  const std::string where = in.file + ": $.settings.shard";
  auto bad = [&](const std::string& what) {
    return MergeError(where + ": " + what + ", got " + s.dump());
  };
  if (!s.is_object()) throw bad("expected an object");
  ShardInfo info;
  for (const char* f : {"index", "count", "suite_cases"}) {
    if (!s.contains(f) || !s[f].is_number_integer() || s[f].get<long long>() < 0)
      throw bad(std::string("expected an integer ") + f + " >= 0");
  }
  info.index = s["index"].get<int>();
  info.count = s["count"].get<int>();
  info.suite_cases = s["suite_cases"].get<std::size_t>();
  if (info.count < 1 || info.index >= info.count) throw bad("expected index < count, count >= 1");
  if (!s.contains("case_indices") || !s["case_indices"].is_array())
    throw bad("expected case_indices, an array");
  // Each case's place in the suite, each place once: a place listed twice would put two of the
  // report's cases in one place, and the merge would keep only one of them.
  std::map<std::size_t, std::size_t> listed;  // place -> where in case_indices
  const json& indices = s["case_indices"];
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const json& i = indices[k];
    const std::string at = where + ".case_indices[" + std::to_string(k) + "]: ";
    if (!i.is_number_integer() || i.get<long long>() < 0 ||
        i.get<std::size_t>() >= info.suite_cases) {
      throw MergeError(at + "expected an integer below suite_cases (" +
                       std::to_string(info.suite_cases) + "), got " + brief(i));
    }
    if (const auto [earlier, fresh] = listed.emplace(i.get<std::size_t>(), k); !fresh) {
      throw MergeError(at + "case " + i.dump() + " is listed twice (at [" +
                       std::to_string(earlier->second) +
                       "] too): each of the suite's cases is in a shard once");
    }
    info.case_indices.push_back(i.get<std::size_t>());
  }
  if (in.report.cases.size() != info.case_indices.size())
    throw bad("expected case_indices to list one index per case (" +
              std::to_string(in.report.cases.size()) + " cases)");
  return info;
}

// The settings that make shards parts of one run.
const char* const kSameInShards[] = {"suite", "impls", "seed", "validate_only", "timing"};

std::string machine_of(const json& context) {
  json m = json::object();
  for (const char* f : {"host", "cpu", "threads", "gpu", "libraries"}) {
    if (context.is_object() && context.contains(f)) m[f] = context[f];
  }
  return m.dump();
}

}  // namespace

Report merge_reports(const std::vector<ReportInput>& inputs, OnDuplicate rule,
                     std::vector<std::string>& notes) {
  if (inputs.empty()) throw MergeError("no reports to merge");
  std::vector<std::optional<ShardInfo>> shards;
  for (const ReportInput& in : inputs) shards.push_back(shard_of(in));
  const bool sharded = std::any_of(shards.begin(), shards.end(), [](auto& s) { return bool(s); });

  // Every case with where it goes: (suite index or input order, input, position).
  struct Placed {
    std::size_t order;
    std::size_t input;
    const Case* c;
  };
  std::vector<Placed> placed;
  if (sharded) {
    std::map<int, std::size_t> seen;  // index -> input
    // The first shard given: what every other input must match.
    const std::size_t f =
        std::size_t(std::find_if(shards.begin(), shards.end(), [](auto& s) { return bool(s); }) -
                    shards.begin());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (!shards[i]) {
        throw MergeError(inputs[i].file + " is not a shard (no settings.shard) but " +
                         inputs[f].file + " is: merge a run's shards, or unsharded reports");
      }
      const ShardInfo& s = *shards[i];
      const ShardInfo& first = *shards[0];
      if (s.count != first.count || s.suite_cases != first.suite_cases) {
        throw MergeError(inputs[i].file + " is shard " + std::to_string(s.index) + "/" +
                         std::to_string(s.count) + " of " + std::to_string(s.suite_cases) +
                         " cases, " + inputs[0].file + " shard " + std::to_string(first.index) +
                         "/" + std::to_string(first.count) + " of " +
                         std::to_string(first.suite_cases) + ": not shards of one run");
      }
      for (const char* f : kSameInShards) {
        const json& a = inputs[0].report.settings.value(f, json());
        const json& b = inputs[i].report.settings.value(f, json());
        if (a != b) {
          throw MergeError(inputs[i].file + ": $.settings." + f + " is " + b.dump() + ", " +
                           inputs[0].file + "'s " + a.dump() + ": not shards of one run");
        }
      }
      if (auto [it, fresh] = seen.emplace(s.index, i); !fresh) {
        throw MergeError("shard " + std::to_string(s.index) + "/" + std::to_string(s.count) +
                         " twice: " + inputs[it->second].file + " and " + inputs[i].file);
      }
      for (std::size_t j = 0; j < inputs[i].report.cases.size(); ++j)
        placed.push_back({s.case_indices[j], i, &inputs[i].report.cases[j]});
    }
    std::string missing;
    for (int k = 0; k < shards[0]->count; ++k) {
      if (!seen.count(k)) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
    }
    if (!missing.empty()) {
      throw MergeError("shard(s) " + missing + " of " + std::to_string(shards[0]->count) +
                       " missing: the merged report would lack their cases");
    }
  } else {
    std::size_t order = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      for (const Case& c : inputs[i].report.cases) placed.push_back({order++, i, &c});
    }
  }
  std::stable_sort(placed.begin(), placed.end(),
                   [](const Placed& a, const Placed& b) { return a.order < b.order; });

  Report out;
  out.context = inputs[0].report.context;
  out.settings = inputs[0].report.settings;
  if (out.settings.is_object()) out.settings.erase("shard");
  json merged = json::array();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Report& r = inputs[i].report;
    merged.push_back({{"file", inputs[i].file},
                      {"shard", shards[i] ? json(std::to_string(shards[i]->index) + "/" +
                                                 std::to_string(shards[i]->count))
                                          : json(nullptr)},
                      {"host", r.context.value("host", json())},
                      {"cases", r.cases.size()},
                      {"complete", r.complete}});
    if (!r.complete) {
      out.complete = false;
      notes.push_back(inputs[i].file + " is incomplete (its run was interrupted): so is the merge");
    }
    if (machine_of(r.context) != machine_of(inputs[0].report.context)) {
      notes.push_back(inputs[i].file + " was measured on another machine or setup than " +
                      inputs[0].file +
                      " (context: host, cpu, threads, gpu or libraries differ): "
                      "its timings do not compare with theirs; the merged context is " +
                      inputs[0].file + "'s");
    }
  }
  out.settings["merged"] = merged;

  // The same case twice: settled by `rule`, each one said.
  using Id = std::tuple<std::string, std::string, int>;
  std::map<Id, std::size_t> where;  // id -> position in out.cases
  std::vector<std::size_t> from;    // input of each out.cases entry
  for (const Placed& p : placed) {
    // Shards' cases are told apart by their place in the suite (a suite may list one layer
    // twice); other reports' by name, key and pass.
    // (The place is appended, not concatenated: GCC 12's -Wrestrict misreads "#" + string.)
    std::string place = "#";
    place += std::to_string(p.order);
    const Id id = sharded ? Id{place, "", 0} : Id{p.c->name, p.c->problem.key(), int(p.c->pass)};
    const auto it = where.find(id);
    if (it == where.end()) {
      where[id] = out.cases.size();
      out.cases.push_back(*p.c);
      from.push_back(p.input);
      continue;
    }
    const std::string what = p.c->name + " " + to_string(p.c->pass) + " (" + p.c->problem.key() +
                             ") is in " + inputs[from[it->second]].file + " and in " +
                             inputs[p.input].file;
    if (rule == OnDuplicate::error) {
      throw MergeError(what + ": settle it with --duplicates first|last");
    }
    // first/last in the order the files were given.
    const bool later_wins =
        rule == OnDuplicate::last ? p.input >= from[it->second] : p.input < from[it->second];
    notes.push_back(what + ": kept " + inputs[later_wins ? p.input : from[it->second]].file +
                    "'s (--duplicates " + (rule == OnDuplicate::last ? "last" : "first") + ")");
    if (later_wins) {
      out.cases[it->second] = *p.c;
      from[it->second] = p.input;
    }
  }
  return out;
}

TuningDb merge_databases_into_file(const std::string& path, const std::vector<std::string>& inputs,
                                   std::vector<std::string>& notes) {
  // Read every input first: a bad one stops the merge before the lock is taken.
  std::vector<TuningDb> dbs;
  for (const std::string& in : inputs) dbs.push_back(read_tuning_db(in));

  FileLock lock(resolve_links(path) + ".lock");    // one lock through a link and the file
  const TuningDb existing = read_tuning_db(path);  // throws on a bad file: nothing is written

  struct Item {
    std::string date;
    std::size_t source;  // 0 = the existing file, 1.. = inputs
    const json* fingerprint;
    const TuningEntry* entry;
  };
  std::vector<Item> items;
  auto collect = [&](const TuningDb& db, std::size_t source) {
    for (const TuningSection& s : db.sections) {
      for (const TuningEntry& e : s.entries) items.push_back({e.date, source, &s.fingerprint, &e});
    }
  };
  collect(existing, 0);
  for (std::size_t i = 0; i < dbs.size(); ++i) collect(dbs[i], i + 1);
  // Oldest measurement first, so that each later one is `fresh` to merge_entries. The reader
  // accepted only real UTC dates "YYYY-MM-DDTHH:MM:SSZ" (JsonReader::utc_date): fixed-width,
  // they order as strings. An entry dated more than a day after this machine's clock would be
  // preferred to every later measurement: such a merge is refused, nothing written (reading
  // such a database is not an error: clocks differ between machines).
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return std::tie(a.date, a.source) < std::tie(b.date, b.source);
  });
  auto name = [&](std::size_t source) { return source == 0 ? path : inputs[source - 1]; };
  if (!items.empty() && items.back().date > utc_date(std::time(nullptr) + 24 * 3600)) {
    const Item& late = items.back();
    throw TuningError(name(late.source) + ": the entry for " + late.entry->problem.key() + " " +
                      to_string(late.entry->pass) + " is dated " + late.date +
                      ", more than a day after this machine's clock (" + utc_now() +
                      "): a merge would prefer it to every later measurement; fix its date or "
                      "the clock");
  }

  TuningDb out;
  std::map<std::tuple<std::string, std::string, int>, std::size_t> holder;  // -> source
  for (const Item& it : items) {
    const std::tuple<std::string, std::string, int> id{
        it.fingerprint->dump(), it.entry->problem.key(), int(it.entry->pass)};
    if (const auto h = holder.find(id); h != holder.end()) {
      std::size_t section = 0;
      while (out.sections[section].fingerprint != *it.fingerprint) ++section;
      const TuningEntry& held = *out.find(*it.fingerprint, it.entry->problem, it.entry->pass);
      const std::string what = it.entry->problem.key() + " " + to_string(it.entry->pass) +
                               " (fingerprint section " + std::to_string(section) + ") is in " +
                               name(h->second) + " and " + name(it.source);
      if (held == *it.entry) {
        notes.push_back(what + ": the same entry, kept once");
      } else {
        notes.push_back(
            what + ": merged, " + name(it.source) + "'s (measured " + it.entry->date +
            (held.date == it.entry->date ? ", the same second: the later given" : ", the newer") +
            ") results replacing the other's for the implementations it tried, the "
            "best chosen again");
      }
    }
    holder[id] = it.source;
    out.merge(*it.fingerprint, *it.entry);
  }
  if (out.sections.size() > 1) {
    notes.push_back(std::to_string(out.sections.size()) + " fingerprints (machines or setups) in " +
                    path + ": each keeps its own entries; a lookup uses only its machine's");
  }
  write_json_atomic(path, to_json(out));
  return out;
}

}  // namespace convbp
