// Bad input, one class per test (docs/bad_input.md lists them): the convbp binary exits with
// status 2, prints exactly one line that names the file, the JSON path and the value where
// there is one, and writes no report (nor a database that was not there).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "report.h"
#include "run_binary.h"
#include "temp_dir.h"

namespace convbp {
namespace {

namespace fs = std::filesystem;

// Each case's files in a folder of its own: ctest runs the cases in parallel processes, and in
// one shared folder a case could remove another's files (report.json, never.json, the folder
// caf\xE9) or find the report another left.
fs::path temp_dir() { return test::test_temp_dir("bad_input"); }

std::string temp_path(const std::string& name) {
  const fs::path path = temp_dir() / name;
  fs::remove_all(path);
  return path.string();
}

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}

// A path in the temp folder that is not removed first (a name too long cannot be).
std::string unused_path(const std::string& name) { return (temp_dir() / name).string(); }

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

const std::string kLayer = R"({"name": "a", "c": 4, "h": 8, "k": 4, "r": 3})";

// A suite with `field` (a JSON member or members) in its "timing" object, or a layer of its own.
std::string suite_with_timing(const std::string& field) {
  return R"({"suite": "x", "impls": ["naive"], "timing": {)" + field + R"(}, "layers": [)" +
         kLayer + "]}";
}
std::string suite_with_layer(const std::string& layer) {
  return R"({"suite": "x", "impls": ["naive"], "layers": [)" + layer + "]}";
}

// A report `show` reads, with `edit` applied to its JSON.
std::string report_file(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  Report report;
  Case c;
  c.name = "x:a";
  c.problem = ConvProblem::parse_key("n1_c4_h8_w8_k4_r3_s3_st1x1_pad0x0x0x0_dil1x1_g1");
  Result r;
  r.impl = "naive";
  c.results.push_back(r);
  report.cases.push_back(c);
  nlohmann::json doc = to_json(report);
  edit(doc);
  return write_file(name, doc.dump());
}

const char* kDbHead = R"({"schema": "convbp.tuning/1", "sections": )";
const char* kDbEntry = R"({"fingerprint": {"convbp": "x"}, "entries": [{
    "problem": "n1_c4_h8_w8_k4_r3_s3_st1x1_pad0x0x0x0_dil1x1_g1", "pass": "data",
    "tuned_as": "x:a", "date": "2024-01-01T00:00:00Z", "candidates": ["naive"],
    "results": [{"impl": "naive", "median_ms": 1, "stddev_ms": 0, "reps": REPS,
                 "workspace_bytes": 0, "deterministic": true, "max_rel": 0, "detail": ""}],
    "rejected": [], "best": null}]})";

std::string db_with_reps(const std::string& name, const std::string& reps) {
  std::string entry = kDbEntry;
  entry.replace(entry.find("REPS"), 4, reps);
  return write_file(name, std::string(kDbHead) + "[" + entry + "]}");
}

// A valid database (reps 1) with `edit` applied to its JSON.
std::string db_file(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  std::string entry = kDbEntry;
  entry.replace(entry.find("REPS"), 4, "1");
  nlohmann::json doc = nlohmann::json::parse(std::string(kDbHead) + "[" + entry + "]}");
  edit(doc);
  return write_file(name, doc.dump());
}

// A report whose case has an ok, timed result of naive (1.5 ms) and it as the best, edited.
std::string timed_report_file(const std::string& name,
                              const std::function<void(nlohmann::json&)>& edit) {
  return report_file(name, [&](nlohmann::json& doc) {
    nlohmann::json& c = doc["cases"][0];
    c["results"][0]["time_ms"] = {{"median", 1.5},  {"min", 1.5},      {"max", 1.5},
                                  {"stddev", 0},    {"reps", 1},       {"iterations", 1},
                                  {"noisy", false}, {"samples", {1.5}}};
    c["best"] = {
        {"impl", "naive"}, {"time_ms", 1.5}, {"runner_up", ""}, {"margin", 0}, {"tie", false}};
    edit(doc);
  });
}

// Shard 0/1 of a suite of 3 cases, as `convbp run --shard` writes it, with `case_indices`.
std::string shard_report_file(const std::string& name, const nlohmann::json& case_indices) {
  return report_file(name, [&](nlohmann::json& doc) {
    nlohmann::json c = doc["cases"][0];
    doc["cases"] = nlohmann::json::array();
    for (const char* layer : {"x:a", "x:b", "x:c"}) {
      c["name"] = layer;
      doc["cases"].push_back(c);
    }
    doc["settings"] = {
        {"suite", "x"},
        {"shard",
         {{"index", 0}, {"count", 1}, {"suite_cases", 3}, {"case_indices", case_indices}}}};
  });
}

struct BadInput {
  std::string name;                        // the class, as docs/bad_input.md names it
  std::function<std::string()> arguments;  // writes what the case needs; convbp's arguments
  std::vector<std::string> expected;       // each must appear in the line
};

std::ostream& operator<<(std::ostream& out, const BadInput& bad) { return out << bad.name; }

using test::Outcome;

Outcome convbp(const std::string& args) { return test::run_convbp(args); }

// Runs convbp on bad input, with -o REPORT added to a measuring command that has none, and
// checks the promise: status 2, one line naming what is wrong, no report, no new database.
void expect_rejected(const std::string& args, const std::vector<std::string>& expected) {
  const std::string report = temp_path("report.json");
  const bool measuring =
      args.rfind("run", 0) == 0 || args.rfind("validate", 0) == 0 || args.rfind("tune", 0) == 0;
  const bool has_output = args.find(" -o ") != std::string::npos;
  // A --db that is not there before must not be there after.
  std::string db;
  if (const std::size_t at = args.find(" --db "); at != std::string::npos) {
    db = args.substr(at + 6, args.find(' ', at + 6) - at - 6);
  }
  std::error_code ec;
  const bool db_existed = !db.empty() && fs::exists(db, ec);
  // Right after the command, so that a case ending in an option without its value stays so.
  std::string full = args;
  if (measuring && !has_output) full.insert(full.find(' '), " -o '" + report + "'");
  const Outcome out = convbp(full);
  EXPECT_EQ(out.status, 2) << args << "\n" << out.output;
  EXPECT_EQ(std::count(out.output.begin(), out.output.end(), '\n'), 1) << "not one line:\n"
                                                                       << out.output;
  EXPECT_EQ(out.output.rfind("convbp: ", 0), 0u) << out.output;
  EXPECT_EQ(out.output.find("convbp: error:"), std::string::npos)
      << "reported as a failure while running:\n"
      << out.output;
  for (const std::string& part : expected) {
    EXPECT_NE(out.output.find(part), std::string::npos) << "wanted \"" << part << "\" in:\n"
                                                        << out.output;
  }
  EXPECT_FALSE(fs::exists(report)) << "left a report";
  if (!db.empty() && !db_existed) {
    EXPECT_FALSE(fs::exists(db, ec)) << "created " << db;
  }
}

class Rejected : public ::testing::TestWithParam<BadInput> {};

TEST_P(Rejected, WithStatus2OneLineNamingItAndNoReport) {
  expect_rejected(GetParam().arguments(), GetParam().expected);
}

// A config file whose text is `text`, as the arguments of `run`.
std::function<std::string()> run_config(const std::string& name, const std::string& text) {
  return [=] { return "run '" + write_file(name, text) + "'"; };
}
std::function<std::string()> fixed(const std::string& args) {
  return [=] { return args; };
}

const std::string kNotUtf8 = "caf\xE9";
const std::string kLongName(300, 'a');

const BadInput kCases[] = {
    // --- suite configs ---------------------------------------------------------------------
    {"config_missing_file",
     fixed("run /nonexistent.json"),
     {"/nonexistent.json: no such config file"}},
    {"config_is_a_directory",
     [] { return "run " + temp_dir().string(); },
     {"a directory, not a config file"}},
    {"config_name_too_long", fixed("run " + kLongName), {"File name too long"}},
    {"config_path_not_utf8",
     [] {
       const std::string dir = temp_path(kNotUtf8);
       fs::create_directories(dir);
       const std::string path = dir + "/s.json";
       std::ofstream(path) << suite_with_layer(kLayer);
       return "run '" + path + "'";
     },
     {"caf\\xE9/s.json", "not valid UTF-8"}},
    {"config_empty_file", run_config("empty.json", ""), {"empty.json: malformed JSON"}},
    {"config_malformed_json",
     run_config("truncated.json", R"({"suite": "x", )"),
     {"truncated.json: malformed JSON"}},
    {"config_nan_literal",
     run_config("nan.json", suite_with_timing(R"("reps": NaN)")),
     {"nan.json: malformed JSON"}},
    {"config_number_beyond_double",
     run_config("huge_float.json", suite_with_timing(R"("max_seconds_per_case": 1e400)")),
     {"huge_float.json: malformed JSON", "1e400"}},
    {"config_not_an_object",
     run_config("array.json", "[1, 2]"),
     {"array.json: expected a JSON object"}},
    {"config_deep_nesting",
     run_config("deep.json", suite_with_layer(R"({"c": )" + nested(100000) + "}")),
     {"deep.json: $.layers[0].c[0]", "nested deeper than 64 levels"}},
    {"config_duplicate_key",
     run_config("dup.json", suite_with_layer(R"({"c": 4, "c": 8, "h": 8, "k": 4, "r": 3})")),
     {"dup.json: $.layers[0].c: duplicate key"}},
    {"config_unknown_top_key",
     run_config("top.json", R"({"suite": "x", "speed": 1, "layers": [)" + kLayer + "]}"),
     {"top.json: speed: unknown key"}},
    {"config_unknown_layer_key",
     run_config("key.json", suite_with_layer(R"({"c": 4, "h": 8, "k": 4, "r": 3, "strides": 2})")),
     {"key.json: layers[0].strides: unknown key"}},
    {"config_unknown_timing_key",
     run_config("timing_key.json", suite_with_timing(R"("repeats": 3)")),
     {"timing_key.json: timing.repeats: unknown key"}},
    {"config_missing_required_key",
     run_config("missing.json", suite_with_layer(R"({"h": 8, "k": 4, "r": 3})")),
     {"missing.json: layers[0]: missing required key \"c\""}},
    {"config_string_where_int_expected",
     run_config("string.json", suite_with_layer(R"({"c": "4", "h": 8, "k": 4, "r": 3})")),
     {"string.json: layers[0].c: expected an integer >= 1, got \"4\""}},
    {"config_float_where_int_expected",
     run_config("float.json", suite_with_timing(R"("reps": 5.0)")),
     {"float.json: timing.reps: expected an integer >= 1, got 5.0"}},
    {"config_negative_size",
     run_config("negative.json", suite_with_layer(R"({"c": 4, "h": -8, "k": 4, "r": 3})")),
     {"negative.json: layers[0].h: expected an integer >= 1, got -8"}},
    {"config_zero_stride",
     run_config("stride.json",
                suite_with_layer(R"({"c": 4, "h": 8, "k": 4, "r": 3, "stride": [1, 0]})")),
     {"stride.json: layers[0].stride[1]: expected an integer >= 1, got 0"}},
    {"config_bad_pad_length",
     run_config("pad.json",
                suite_with_layer(R"({"c": 4, "h": 8, "k": 4, "r": 3, "pad": [1, 2, 3]})")),
     {"pad.json: layers[0].pad: expected an integer >= 0, [h, w] or [top, left, bottom, right]",
      "[1,2,3]"}},
    {"config_size_beyond_32_bits",
     run_config("size32.json", suite_with_layer(R"({"c": 4294967296, "h": 8, "k": 4, "r": 3})")),
     {"size32.json: layers[0].c: expected an integer <= 2147483647, got 4294967296"}},
    {"config_size_beyond_64_bits",
     run_config("size64.json",
                suite_with_layer(R"({"c": 18446744073709551617, "h": 8, "k": 4, "r": 3})")),
     {"size64.json: layers[0].c: expected an integer >= 1, got 1.8446744073709552e+19"}},
    {"config_impossible_groups",
     run_config("groups.json",
                suite_with_layer(R"({"c": 6, "h": 8, "k": 4, "r": 3, "groups": 4})")),
     {"groups.json: layers[0]: impossible shape: c=6 is not divisible by groups=4"}},
    {"config_kernel_larger_than_input",
     run_config("kernel.json", suite_with_layer(R"({"c": 4, "h": 2, "k": 4, "r": 3})")),
     {"kernel.json: layers[0]: impossible shape: dilated kernel height 3 exceeds"}},
    {"config_tensor_over_memory_limit",
     run_config(
         "memory.json",
         suite_with_layer(R"({"n": 1048576, "c": 1024, "h": 1024, "w": 1, "k": 1, "r": 1})")),
     {"memory.json: layers[0]: impossible shape: x would take 4096 GiB, over the 64 GiB limit"}},
    {"config_reps_beyond_range",
     run_config("reps.json", suite_with_timing(R"("reps": 2147483648)")),
     {"reps.json: timing.reps: expected an integer <= 1000, got 2147483648"}},
    {"config_warmup_beyond_range",
     run_config("warmup.json", suite_with_timing(R"("warmup": 4294967296)")),
     {"warmup.json: timing.warmup: expected an integer <= 1000, got 4294967296"}},
    {"config_count_beyond_range",
     run_config("count.json",
                suite_with_layer(R"({"c": 4, "h": 8, "k": 4, "r": 3, "count": 4294967297})")),
     {"count.json: layers[0].count: expected an integer <= 1000000, got 4294967297"}},
    {"config_seconds_beyond_range",
     run_config("seconds.json", suite_with_timing(R"("min_rep_seconds": 1e9)")),
     {"seconds.json: timing.min_rep_seconds: expected a number <= 60, got 1000000000.0"}},
    {"config_seconds_below_range",
     run_config("budget.json", suite_with_timing(R"("max_seconds_per_case": 0)")),
     {"budget.json: timing.max_seconds_per_case: expected a number >= 0.001, got 0"}},
    {"config_bad_pass_name",
     run_config("pass.json",
                R"({"suite": "x", "passes": ["forward"], "layers": [)" + kLayer + "]}"),
     {"pass.json: passes[0]: expected \"data\" or \"weights\", got \"forward\""}},
    {"config_empty_impls",
     run_config("impls.json", R"({"suite": "x", "impls": [], "layers": [)" + kLayer + "]}"),
     {"impls.json: impls: expected a non-empty array"}},
    {"config_wrong_schema",
     run_config("schema.json",
                R"({"schema": "convbp.config/2", "suite": "x", "layers": [)" + kLayer + "]}"),
     {"schema.json: schema: expected \"convbp.config/1\""}},
    {"config_duplicate_layer_name",
     run_config("names.json", suite_with_layer(kLayer + "," + kLayer)),
     {"names.json: layers[1].name: duplicate layer name \"a\""}},
    {"config_duplicate_pass",
     run_config("passes.json",
                R"({"suite": "x", "passes": ["data", "data"], "layers": [)" + kLayer + "]}"),
     {"passes.json: passes[1]: expected a value not listed before, got \"data\""}},
    {"config_duplicate_impl_pattern",
     run_config("impl_twice.json",
                R"({"suite": "x", "impls": ["naive", "naive"], "layers": [)" + kLayer + "]}"),
     {"impl_twice.json: impls[1]: expected a pattern not listed before, got \"naive\""}},
    {"config_bad_default_no_layer_uses",
     run_config("defaults.json", R"({"suite": "x", "impls": ["naive"],
                                     "defaults": {"c": "x", "stride": "bad", "pad": -5},
                                     "layers": [{"c": 4, "h": 8, "k": 4, "r": 3,
                                                 "stride": 1, "pad": 0}]})"),
     {"defaults.json: defaults.c: expected an integer >= 1, got \"x\""}},
    // --- the command line ------------------------------------------------------------------
    {"cli_unknown_command", fixed("frobnicate"), {"unknown command 'frobnicate'"}},
    {"cli_unknown_option", fixed("run smoke --bogus"), {"unknown option '--bogus'"}},
    {"cli_missing_value", fixed("run smoke --impl naive --reps"), {"--reps: missing value"}},
    {"cli_second_suite", fixed("run smoke smoke"), {"unexpected argument 'smoke'"}},
    {"cli_impl_pattern_matching_nothing",
     fixed("run smoke --impl nosuch.*"),
     {"pattern 'nosuch.*' matches no implementation"}},
    {"cli_empty_impl_list", fixed("run smoke --impl ,"), {"--impl: empty pattern list"}},
    {"cli_bad_pass",
     fixed("run smoke --pass forward"),
     {"--pass: expected data or weights, got 'forward'"}},
    {"cli_int_option_not_a_number",
     fixed("run smoke --threads zero"),
     {"--threads: expected an integer >= 1, got 'zero'"}},
    {"cli_int_option_with_fraction",
     fixed("run smoke --reps 2.5"),
     {"--reps: expected an integer >= 1, got '2.5'"}},
    {"cli_reps_beyond_range",
     fixed("run smoke --impl naive --reps 4294967296"),
     {"--reps: expected an integer <= 1000, got '4294967296'"}},
    {"cli_threads_beyond_range",
     fixed("run smoke --impl naive --threads 4294967297"),
     {"--threads: expected an integer <= 1024, got '4294967297'"}},
    {"cli_seed_negative",
     fixed("run smoke --seed -1"),
     {"--seed: expected an integer >= 0, got '-1'"}},
    {"cli_seed_beyond_64_bits",
     fixed("run smoke --seed 99999999999999999999"),
     {"--seed: expected an integer <= 9223372036854775807, got '99999999999999999999'"}},
    {"cli_pass_contradicts_problem",
     fixed("run --problem '--dir=BWD_D mb1ic2ih5oc2oh5kh3ph1' --impl naive --pass weights"),
     {"--pass weights contradicts --problem '--dir=BWD_D mb1ic2ih5oc2oh5kh3ph1'"}},
    {"cli_threads_beyond_cpus",
     fixed("run smoke --impl naive --threads 1024"),
     {"--threads 1024: this process may use", "CPU(s)"}},
    {"cli_empty_suite_argument",
     fixed("run '' --impl naive"),
     {"run: an empty argument where a file was expected"}},
    {"cli_list_with_an_argument", fixed("list naive"), {"unexpected argument 'naive'"}},
    {"cli_decimal_option_in_hex",
     fixed("run smoke --impl naive --isolate --candidate-timeout 0x10"),
     {"--candidate-timeout: expected seconds from 0.1 to 1000000, got '0x10'"}},
    {"problem_key_malformed",
     fixed("run smoke --problem n8_c64"),
     {"--problem: bad problem key 'n8_c64'"}},
    {"problem_key_impossible_shape",
     fixed("run smoke --problem n8_c6_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g4"),
     {"--problem: c=6 is not divisible by groups=4"}},
    {"problem_key_size_overflow",
     fixed("run --problem n1_c1_h1_w1_k1_r4294967297_s1_st1x1_pad0x0x0x0_dil4294967296x1_g1"),
     {"--problem: r=4294967297 is too large (at most 2147483647)"}},
    {"problem_key_byte_count_overflow",
     fixed("run --problem "
           "n2147483647_c2147483647_h2147483647_w1_k1_r1_s1_st1x1_pad0x0x0x0_dil1x1_g1"),
     {"--problem: x is too large: its byte count overflows 64 bits"}},
    // --- output paths ----------------------------------------------------------------------
    {"output_directory_missing",
     fixed("run smoke -o /nonexistent_dir/r.json"),
     {"-o: /nonexistent_dir/r.json: cannot write: directory /nonexistent_dir does not exist"}},
    {"output_is_a_directory",
     [] { return "run smoke -o " + temp_dir().string(); },
     {"cannot write: a directory, not a file name"}},
    {"output_is_a_fifo",  // a device the same way: a rename over it would replace it
     [] {
       const std::string fifo = temp_path("fifo.json");
       ::mkfifo(fifo.c_str(), 0600);
       return "run smoke --impl naive -o " + fifo;
     },
     {"fifo.json: cannot write: a FIFO, not a regular file"}},
    {"output_is_a_database",
     [] { return "run smoke --impl naive -o " + db_with_reps("db_out.json", "1"); },
     {"db_out.json: exists and is a convbp tuning database, not one of schema convbp.report/1"}},
    {"output_is_the_suite",
     [] {
       const std::string suite = write_file("suite_out.json", suite_with_layer(kLayer));
       return "run " + suite + " -o " + suite;
     },
     {"suite_out.json: the suite file itself"}},
    {"output_is_the_tuning_db",
     [] {
       const std::string db = temp_path("db_and_out.json");
       return "tune smoke --impl naive --db " + db + " -o " + db;
     },
     {"-o and --db name one file", "db_and_out.json"}},
    {"output_is_the_tuning_db_through_a_link",  // a dangling link, followed as the write would
     [] {
       const std::string db = temp_path("db_behind_link.json");
       const std::string link = temp_path("link_to_db.json");
       fs::create_symlink(db, link);
       return "tune smoke --impl naive --db " + db + " -o " + link;
     },
     {"-o and --db name one file", "link_to_db.json"}},
    {"output_is_the_dump_index",
     [] {
       const std::string dump = temp_path("dump_and_out");
       return "validate smoke --impl naive --dump " + dump + " -o " + dump + "/index.json";
     },
     {"index.json: the --dump folder or its index.json"}},
    {"output_empty_name", fixed("run smoke --impl naive -o ''"), {"-o: an empty file name"}},
    {"output_name_too_long",
     [] { return "run smoke -o " + unused_path(kLongName + ".json"); },
     {"-o: ", "cannot write: File name too long"}},
    {"output_path_not_utf8",
     [] { return "run smoke -o '" + temp_path(kNotUtf8 + ".json") + "'"; },
     {"-o: ", "caf\\xE9.json: the path is not valid UTF-8"}},
    {"dump_folder_not_utf8",
     [] { return "validate smoke --impl naive --dump '" + temp_path(kNotUtf8) + "'"; },
     {"--dump: ", "caf\\xE9: the path is not valid UTF-8"}},
    {"dump_folder_is_a_file",
     [] { return "validate smoke --impl naive --dump " + write_file("a_file", "x"); },
     {"--dump: ", "a_file: "}},
    {"dump_folder_name_too_long",
     [] { return "validate smoke --impl naive --dump " + unused_path(kLongName); },
     {"--dump: ", "File name too long"}},
    // --- reports (convbp show) -------------------------------------------------------------
    {"show_without_a_file", fixed("show"), {"show: expected exactly one REPORT file"}},
    {"input_beyond_size_limit",  // endless: read up to the limit, not until memory runs out
     fixed("show /dev/zero"),
     {"/dev/zero: cannot read report: larger than 256 MiB, the most convbp reads"}},
    {"show_missing_report",
     fixed("show /nonexistent/report.json"),
     {"/nonexistent/report.json: cannot open report"}},
    {"show_malformed_report",
     [] { return "show " + write_file("r_bad.json", "{\"schema\""); },
     {"r_bad.json: malformed JSON"}},
    {"show_not_a_report",
     [] { return "show " + write_file("r_config.json", suite_with_layer(kLayer)); },
     {"r_config.json: $: missing key \"schema\""}},
    {"show_report_bad_field",
     [] {
       return "show " + report_file("r_status.json", [](nlohmann::json& doc) {
                doc["cases"][0]["results"][0]["status"] = "fast";
              });
     },
     {"r_status.json: $.cases[0].results[0].status: unknown status"}},
    {"show_report_integer_beyond_range",
     [] {
       return "show " + report_file("r_count.json", [](nlohmann::json& doc) {
                doc["cases"][0]["count"] = 4294967296;
              });
     },
     {"r_count.json: $.cases[0].count: expected an integer from 1 to 2147483647, got 4294967296"}},
    {"show_report_best_not_an_ok_result",
     [] {
       return "show " + report_file("r_best.json", [](nlohmann::json& doc) {
                doc["cases"][0]["best"] = {{"impl", "winograd.f2x3"},
                                           {"time_ms", 1.0},
                                           {"runner_up", ""},
                                           {"margin", 0},
                                           {"tie", false}};
              });
     },
     {"r_best.json: $.cases[0].best.impl: \"winograd.f2x3\" is not among the case's ok results"}},
    {"show_report_best_time_not_its_result",
     [] {
       return "show " + timed_report_file("r_best_time.json", [](nlohmann::json& doc) {
                doc["cases"][0]["best"]["time_ms"] = 0.5;
              });
     },
     {"r_best_time.json: $.cases[0].best.time_ms: expected the time_ms.median of \"naive\"'s "
      "result (1.5), got 0.5"}},
    {"show_report_negative_time",
     [] {
       return "show " + timed_report_file("r_time.json", [](nlohmann::json& doc) {
                doc["cases"][0]["results"][0]["time_ms"]["median"] = -1.5;
                doc["cases"][0]["best"]["time_ms"] = -1.5;
              });
     },
     {"r_time.json: $.cases[0].results[0].time_ms.median: expected a number >= 0, got -1.5"}},
    {"show_report_zero_reps",
     [] {
       return "show " + timed_report_file("r_reps.json", [](nlohmann::json& doc) {
                doc["cases"][0]["results"][0]["time_ms"]["reps"] = 0;
              });
     },
     {"r_reps.json: $.cases[0].results[0].time_ms.reps: expected an integer from 1 to "
      "2147483647, got 0"}},
    {"show_report_negative_flops",
     [] {
       return "show " + report_file("r_flops.json",
                                    [](nlohmann::json& doc) { doc["cases"][0]["flops"] = -1; });
     },
     {"r_flops.json: $.cases[0].flops: expected a number >= 0, got -1"}},
    {"show_report_network_wrong_type",
     [] {
       return "show " +
              report_file("r_network.json", [](nlohmann::json& doc) { doc["network"] = "fast"; });
     },
     {"r_network.json: $.network: expected an array of network totals, got \"fast\""}},
    {"show_report_unknown_top_key",
     [] {
       return "show " +
              report_file("r_key.json", [](nlohmann::json& doc) { doc["comment"] = "mine"; });
     },
     {"r_key.json: $.comment: unknown key"}},
    {"show_report_deep_nesting",
     [] {
       const std::string path =
           report_file("r_deep.json", [](nlohmann::json& doc) { doc["settings"] = "DEEP"; });
       std::ifstream in(path);
       std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
       text.replace(text.find("\"DEEP\""), 6, nested(100000));
       return "show " + write_file("r_deep.json", text);
     },
     {"r_deep.json: $.settings[0]", "nested deeper than 64 levels"}},
    // --- tuning databases (convbp tune) ----------------------------------------------------
    {"tune_without_db", fixed("tune smoke"), {"tune: --db FILE is required"}},
    {"tune_bad_max_workspace",
     [] { return "tune smoke --db " + temp_path("never.json") + " --max-workspace lots"; },
     {"--max-workspace: expected a whole number of bytes", "'lots'"}},
    {"tune_max_workspace_not_whole_bytes",
     [] { return "tune smoke --db " + temp_path("never.json") + " --max-workspace 1.5"; },
     {"--max-workspace: expected a whole number of bytes", "'1.5'"}},
    {"tune_max_error_out_of_range",
     [] { return "tune smoke --db " + temp_path("never.json") + " --max-error inf"; },
     {"--max-error: expected a number > 0 and <= 1, got 'inf'"}},
    {"tune_db_directory_missing",
     fixed("tune smoke --db /nonexistent_dir/x.json"),
     {"--db: /nonexistent_dir/x.json: cannot write: directory /nonexistent_dir does not exist"}},
    {"tune_db_name_too_long",
     [] { return "tune smoke --db " + unused_path(kLongName + ".json"); },
     {"--db: ", "File name too long"}},
    {"tune_db_malformed",
     [] { return "tune smoke --impl naive --db " + write_file("db_bad.json", "{\"schema\""); },
     {"db_bad.json: malformed JSON"}},
    {"tune_db_foreign_schema",
     [] {
       return "tune smoke --impl naive --db " +
              write_file("db_report.json", R"({"schema": "convbp.report/1", "cases": []})");
     },
     {"db_report.json: $.schema: expected \"convbp.tuning/1\""}},
    {"tune_db_integer_beyond_range",
     [] { return "tune smoke --impl naive --db " + db_with_reps("db_reps.json", "4294967296"); },
     {"db_reps.json: $.sections[0].entries[0].results[0].reps: expected an integer from 1 to "
      "2147483647, got 4294967296"}},
    {"tune_db_reps_zero",
     [] { return "tune smoke --impl naive --db " + db_with_reps("db_reps0.json", "0"); },
     {"db_reps0.json: $.sections[0].entries[0].results[0].reps: expected an integer from 1 to "
      "2147483647, got 0"}},
    {"tune_db_date_not_as_convbp_writes_it",
     [] {
       return "tune smoke --impl naive --db " + db_file("db_date.json", [](nlohmann::json& doc) {
                doc["sections"][0]["entries"][0]["date"] = "yesterday";
              });
     },
     {"db_date.json: $.sections[0].entries[0].date: expected a UTC date and time as convbp "
      "writes it, \"YYYY-MM-DDTHH:MM:SSZ\", got \"yesterday\""}},
    {"tune_db_date_not_a_real_date",
     [] {
       return "tune smoke --impl naive --db " + db_file("db_feb.json", [](nlohmann::json& doc) {
                doc["sections"][0]["entries"][0]["date"] = "2025-02-29T12:00:00Z";
              });
     },
     {"db_feb.json: $.sections[0].entries[0].date: expected a real UTC date and time",
      "got \"2025-02-29T12:00:00Z\""}},
    {"merge_db_date_in_the_future",
     [] {
       return "merge -o " + temp_path("merged_future.json") + " " +
              db_file("db_future.json", [](nlohmann::json& doc) {
                doc["sections"][0]["entries"][0]["date"] = "2999-01-01T00:00:00Z";
              });
     },
     {"db_future.json: the entry for n1_c4_h8_w8_k4_r3_s3_st1x1_pad0x0x0x0_dil1x1_g1 data is "
      "dated 2999-01-01T00:00:00Z, more than a day after this machine's clock"}},
    {"tune_db_best_time_not_its_result",
     [] {
       return "tune smoke --impl naive --db " + db_file("db_best.json", [](nlohmann::json& doc) {
                doc["sections"][0]["entries"][0]["best"] = {{"impl", "naive"},
                                                            {"time_ms", 0.5},
                                                            {"runner_up", ""},
                                                            {"margin", 0},
                                                            {"tie", false}};
              });
     },
     {"db_best.json: $.sections[0].entries[0].best.time_ms: expected the median_ms of "
      "\"naive\"'s result (1.0), got 0.5"}},
    {"tune_db_result_twice",
     [] {
       return "tune smoke --impl naive --db " + db_file("db_twice.json", [](nlohmann::json& doc) {
                nlohmann::json& results = doc["sections"][0]["entries"][0]["results"];
                results.push_back(results[0]);
              });
     },
     {"db_twice.json: $.sections[0].entries[0].results[1].impl: \"naive\" is listed twice in "
      "one entry"}},
    {"tune_db_candidate_twice",
     [] {
       return "tune smoke --impl naive --db " + db_file("db_cand.json", [](nlohmann::json& doc) {
                doc["sections"][0]["entries"][0]["candidates"].push_back("naive");
              });
     },
     {"db_cand.json: $.sections[0].entries[0].candidates[1]: \"naive\" is listed twice in one "
      "entry"}},
    {"tune_db_fingerprint_threads_zero",
     [] {
       return "tune smoke --impl naive --db " + db_file("db_threads.json", [](nlohmann::json& doc) {
                doc["sections"][0]["fingerprint"]["threads"] = 0;
              });
     },
     {"db_threads.json: $.sections[0].fingerprint.threads: expected an integer from 1 to "
      "2147483647, got 0"}},
    {"tune_db_deep_nesting",
     [] {
       return "tune smoke --impl naive --db " +
              write_file("db_deep.json", std::string(kDbHead) + nested(100000) + "}");
     },
     {"db_deep.json: $.sections[0][0]", "nested deeper than 64 levels"}},
    {"tune_db_duplicate_key",
     [] {
       return "tune smoke --impl naive --db " +
              write_file("db_dup.json", std::string(kDbHead) + "[], \"sections\": []}");
     },
     {"db_dup.json: $.sections: duplicate key"}},
    // --- merges (convbp merge) -------------------------------------------------------------
    {"merge_report_settings_not_an_object",
     [] {
       return "merge -o " + temp_path("report.json") + " " +
              report_file("m_settings.json",
                          [](nlohmann::json& doc) { doc["settings"] = nullptr; });
     },
     {"m_settings.json: $.settings: expected an object, got null"}},
    {"merge_shard_case_index_twice",
     [] {
       return "merge -o " + temp_path("report.json") + " " +
              shard_report_file("shard_twice.json", {0, 0, 0});
     },
     {"shard_twice.json: $.settings.shard.case_indices[1]: case 0 is listed twice (at [0] too)"}},
};

std::string case_name(const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(BadInput, Rejected, ::testing::ValuesIn(kCases), case_name);

}  // namespace
}  // namespace convbp
