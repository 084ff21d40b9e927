// `convbp merge`: the reports of a suite's shards (`--shard I/N`, shard.h) combined into one
// report, and tuning databases combined into one, per machine fingerprint (docs/cluster.md).
// Conflicts are settled by stated rules and each is reported, never settled silently.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "report.h"
#include "tuning.h"

namespace convbp {

// Inputs that cannot be merged: shards of different counts or suites, a shard twice or missing,
// a case twice under the `error` rule. The message names the files.
class MergeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a file given to `convbp merge` holds, by its "schema" field. Throws MergeError naming
// the file when it is not JSON or has another schema.
enum class MergeKind { report, tuning };
MergeKind merge_kind(const std::string& path);

// The same case (name, canonical key and pass) in two reports: an error (the default: shards
// never share a case, so a repeat means a report given twice or shards of different runs), or
// the first or the last one in the order the files are given, with a note for each.
enum class OnDuplicate { error, first, last };

struct ReportInput {
  std::string file;
  Report report;
};
// Shards (settings.shard): all inputs must be shards of one count, of the same suite, seed,
// implementations and timing, each index once and none missing; the cases come back in the
// suite's order. Reports without shards: their cases one after another, in the order given.
// The merged report's context is the first input's; settings.merged lists every input (file,
// shard, host, cases); complete is false when any input is. Notes: duplicates settled, inputs
// from different machines, incomplete inputs.
Report merge_reports(const std::vector<ReportInput>& inputs, OnDuplicate rule,
                     std::vector<std::string>& notes);

// Merges the databases at `inputs` into the one at `path` (created if missing; its entries
// take part like the inputs'), under path's lock, written atomically (tuning.h's safety rules).
// Per fingerprint, an entry of the same key and pass in two places is merged by merge_entries
// (tuning.h; docs/tuning.md), the newer measurement (by date; same date: the later file, the
// existing `path` first) being the fresh one: its results replace the older's for the
// implementations it tried, the others' stay, and the best is chosen again. Each such merge is
// a note. Throws TuningError for a file that is not a valid database (nothing is written).
TuningDb merge_databases_into_file(const std::string& path, const std::vector<std::string>& inputs,
                                   std::vector<std::string>& notes);

}  // namespace convbp
