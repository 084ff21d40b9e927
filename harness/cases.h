// What `convbp cases` prints: a suite expanded into its cases with every derived size, so that
// scripts ask convbp for keys, output sizes and flops instead of computing them again
// (problem.h computes them, and nothing else does).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config.h"
#include "runner.h"

namespace convbp {

// A problem's fields as the dump's index.json and `convbp cases` spell them: n c h w k r s,
// stride [h, w], pad [top, left, bottom, right], dilation [h, w], groups.
nlohmann::ordered_json problem_fields(const ConvProblem& problem);

// The cases document (schema convbp.cases/1, docs/config.md), one case a line: the suite's
// name, source and file, the passes, and per case its name, canonical key, pass, count, shape
// fields, output size (p, q), element counts, flops and accumulation length.
std::string cases_json(const Suite& suite, const std::vector<CaseSpec>& cases);

// One line per case: name, pass and key, as `convbp show --all` heads each case.
std::string cases_text(const std::vector<CaseSpec>& cases);

}  // namespace convbp
