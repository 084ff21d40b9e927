// `--shard I/N`: a deterministic share of a suite's cases, so that N processes (a Slurm job
// array, a Kubernetes Indexed Job; docs/cluster.md) measure every case once between them.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "problem.h"

namespace convbp {

struct CaseSpec;

// Shard `index` of `count`. Indices count from 0, as SLURM_ARRAY_TASK_ID (with --array=0-N-1)
// and Kubernetes' JOB_COMPLETION_INDEX do, so a job script passes its index through unchanged.
struct Shard {
  int index = 0;
  int count = 1;
  std::string text() const;  // "2/4"
  bool operator==(const Shard&) const = default;
};

// Shard counts beyond any cluster job's size.
inline constexpr int kMaxShards = 100000;

// "I/N" with 0 <= I < N <= kMaxShards. Throws std::invalid_argument with a message that says
// what was expected ("--shard 4/4: the index counts from 0: expected 0 to 3").
Shard parse_shard(const std::string& text);

// The indices (into `cases`, ascending) of the cases shard `shard` runs. The rule, the same in
// every process that expands the same suite with the same options:
//  - cases with the same canonical key and pass form one unit and stay together (`tune`
//    measures such a shape once and answers the repeats from its database);
//  - units are taken heaviest first (weight: the flops of their cases; ties by key and pass)
//    and each goes to the shard with the least weight so far (ties: the lowest index) —
//    the longest-processing-time rule, since cases differ in cost by 100x and more.
// Every case is in exactly one shard; a shard may be empty when there are fewer units than
// shards.
std::vector<std::size_t> shard_cases(const std::vector<CaseSpec>& cases, const Shard& shard);

}  // namespace convbp
