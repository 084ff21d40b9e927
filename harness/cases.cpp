#include "cases.h"

#include <algorithm>

namespace convbp {

nlohmann::ordered_json problem_fields(const ConvProblem& pr) {
  return {{"n", pr.n},
          {"c", pr.c},
          {"h", pr.h},
          {"w", pr.w},
          {"k", pr.k},
          {"r", pr.r},
          {"s", pr.s},
          {"stride", {pr.stride_h, pr.stride_w}},
          {"pad", {pr.pad_top, pr.pad_left, pr.pad_bottom, pr.pad_right}},
          {"dilation", {pr.dilation_h, pr.dilation_w}},
          {"groups", pr.groups},
          {"dtype", to_string(pr.dtype)},
          {"layout", to_string(pr.layout)}};
}

std::string cases_json(const Suite& suite, const std::vector<CaseSpec>& cases) {
  nlohmann::ordered_json passes = nlohmann::ordered_json::array();
  std::string list;
  for (const CaseSpec& spec : cases) {
    const ConvProblem& pr = spec.problem;
    const char* pass = to_string(spec.pass);
    if (std::find(passes.begin(), passes.end(), pass) == passes.end()) passes.push_back(pass);
    nlohmann::ordered_json c = {
        {"name", spec.name}, {"pass", pass}, {"problem", pr.key()}, {"count", spec.count}};
    c.update(problem_fields(pr));
    c.update(
        {{"p", pr.p()},
         {"q", pr.q()},
         {"flops", pr.flops()},
         {"elements",
          {{"x", pr.x_elems()}, {"w", pr.w_elems()}, {"dy", pr.y_elems()}, {"db", pr.b_elems()}}},
         {"accumulation_length", pr.accumulation_length(spec.pass)}});
    list += (list.empty() ? "\n  " : ",\n  ") + c.dump();
  }
  const nlohmann::ordered_json head = {{"schema", "convbp.cases/1"},
                                       {"suite", suite.name},
                                       {"source", suite.source},
                                       {"file", suite.file},
                                       {"passes", passes}};
  // One case a line: readable, and grep finds a case with its sizes.
  std::string text = head.dump();
  text.pop_back();  // the closing brace
  return text + ",\n \"cases\": [" + list + "]}\n";
}

std::string cases_text(const std::vector<CaseSpec>& cases) {
  std::string out;
  for (const CaseSpec& spec : cases) {
    out += spec.name + "  " + to_string(spec.pass) + "  " + spec.problem.key() + "\n";
  }
  return out;
}

}  // namespace convbp
