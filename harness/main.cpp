// convbp: validate, time and choose convolution backward-pass implementations.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backward.h"
#include "blas_core.h"
#include "cases.h"
#include "config.h"
#include "context.h"
#include "io.h"
#include "json_input.h"
#include "merge.h"
#include "peer_formats.h"
#include "report.h"
#include "runner.h"
#include "shard.h"
#include "totals.h"
#include "tune.h"
#include "tuning.h"

namespace {

using namespace convbp;

// Bad command-line input (exit status 2), as opposed to a failure while running. The library's
// own input errors (ConfigError, SelectionError) map to the same status in main().
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The speedup column's baselines: one per device, as the implementations declare them
// (Roles::baseline).
std::vector<std::string> baseline_names() {
  std::vector<std::string> names;
  for (const Backward* b : baselines()) names.push_back(b->name());
  return names;
}

constexpr const char* kUsage = R"(usage: convbp <command> [options]

Validates convolution backward-pass implementations against an fp64 reference, times the
correct ones, and picks the fastest per layer shape and pass (data: dx; weights: dw and db).

commands:
  list                       implementations, and why each unavailable one is unavailable
  run [SUITE|FILE]           validate + time + choose; no argument = the built-in default suite
  validate [SUITE|FILE]      correctness only (no timing)
  show REPORT                the winners table and network total of a saved report
  tune [SUITE|FILE] --db F   like run, keeping the winners in a tuning database (docs/tuning.md)
  cases [SUITE|FILE]         the cases a run would measure: names, keys, output sizes, flops
  merge -o OUT FILE...       shards' reports into one report, or tuning databases into one
                             (docs/cluster.md); run, validate, tune and cases take --shard I/N

`convbp <command> --help` describes each command's options.
exit status: 0 success, 1 failure while running, 2 bad input (config, key, option, path;
docs/bad_input.md).
)";

constexpr const char* kRunUsage = R"(usage: convbp run [SUITE|FILE] [options]
       convbp validate [SUITE|FILE] [options]

SUITE is a name under configs/ (smoke, resnet50, vgg16, mobilenet_v2, alexnet,
torchvision_resnet50, ...) or a path to a convbp.config/1 JSON file (docs/config.md), or to a
text file of benchdnn problem descriptors or MIOpenDriver conv command lines, one per line.
Without one, the built-in default suite runs (configs/default.json: a representative ResNet-50
subset at batch 8).

options:
  -o, --output FILE    write the report (convbp.report/1, docs/report.md) to FILE; it is
                       rewritten after every case, so an interrupted run keeps what it measured.
                       FILE may be new, empty or a convbp report (through a link: the file it
                       names); anything else there (a database, a suite, a device) is an error
  --impl GLOB,...      implementations to run, e.g. 'im2col_gemm.*,onednn.direct' (default:
                       the suite's "impls"); a family's member by its full name too, e.g.
                       'cudnn.engine12.k2=3.tf32' (see `convbp list`). Opt-in entries run
                       only when named in full: cudnn.search.fp32|.tf32|.fp32acc searches each
                       cuDNN engine's knob space for CONVBP_CUDNN_SEARCH_S seconds (default
                       20) per case (docs/cudnn.md)
  --pass data|weights  run only one pass
  --threads N          threads for every library (OpenBLAS, OpenMP, oneDNN), 1 to the CPUs
                       this process may use; default: OMP_NUM_THREADS when set (within the same
                       range), else all cores
  --reps N             timing repetitions, 1 to 1000 (default: the suite's timing.reps)
  --problem KEY        run this one problem instead of the suite's layers, e.g.
                       n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1 (a suffix
                       _bf16_nhwc picks another dtype, f32|bf16|f16, and layout, nchw|nhwc;
                       none: f32 NCHW), or in a peer's words: a benchdnn descriptor
                       ('--dir=BWD_D mb8ic64ih56oc64oh56kh3ph1') or an MIOpenDriver command
                       ('conv -n 8 -c 64 -H 56 -W 56 -k 64 -y 3 -x 3 -p 1 -q 1 -F 2'); a single
                       pass it states is run, and --pass must agree (docs/config.md)
  --seed N             data seed, 0 to 2^63-1 (default 1); failures print it with the key
  --shard I/N          run only shard I (counting from 0) of N: a deterministic share of the
                       cases, the N shards together running every case once (balanced by flops;
                       `convbp merge` joins their reports; docs/cluster.md)
  --dump DIR           write inputs, the fp64 reference and every output as .npy, plus
                       DIR/index.json (arrays in the problem's dtype and layout; bf16 as uint16)
  --isolate            run every CPU candidate in a child process of its own: one that crashes
                       is recorded as `crashed` with its signal, one that hangs past
                       --candidate-timeout as `timeout`, and the run goes on. CUDA candidates
                       always run in this process (a CUDA context does not survive fork).
                       Not the default: measured, it costs nothing on smoke but 19% of the
                       default suite's time (27.7 s -> 32.8 s; docs/isolation.md)
  --no-isolate         run every candidate in this process (the default; a crash ends the run)
  --candidate-timeout S  wall-clock limit of one isolated candidate (planning, validation and
                       timing), seconds, 0.1 to 1000000; default 60 + 10 x the suite's
                       max_seconds_per_case
  -q, --quiet          no progress on stderr (it is off anyway when stderr is not a terminal)

After the winners table, run prints the network total: the suite's backward pass, every layer
times its count, with convbp's picks and with each single strategy used everywhere, and the
layers that contribute most (see convbp show --help; the report keeps it as "network").

Every implementation is checked against the fp64 reference on its first call and again on a
second one (the last timed call; with validate, one more call), with outputs NaN-poisoned before
each; writing into an input is incorrect; determinism is measured bit for bit between the two
calls; a case or workspace larger than the memory available is an "out of memory" error
(docs/report.md).

Paths (SUITE, -o, --dump) must be UTF-8; outputs are checked before anything is measured.
An option given twice takes its last value (a wrapper's defaults can be overridden).
Bad input exits with status 2 and one line naming it (docs/bad_input.md).
)";

constexpr const char* kListUsage = R"(usage: convbp list

Lists every registered implementation with its device, and for those that cannot run on this
machine (a missing library or device), the reason. The first line names the kernels (core)
OpenBLAS runs and who chose them: OpenBLAS itself, the environment's OPENBLAS_CORETYPE, or
convbp, which re-executes itself with the best core the CPU supports when OpenBLAS detected a
lesser one and OPENBLAS_CORETYPE is not set. The last lines name the roles the implementations
declare: the fp64 reference, each device's speedup baseline (the winners table's last column)
and the Autotuner's default fallbacks.
)";

constexpr const char* kShowUsage = R"(usage: convbp show REPORT [--all] [--torch FILE]

Prints the winners table of a saved report: per case and pass, the fastest correct
implementation, its median time, GF/s and speedup over its device's baseline
(im2col_gemm.per_sample on the CPU, cudnn.algo0.fp32 on a GPU; `convbp list` marks them).
Then the network total (as `convbp run` prints it): the backward pass of the whole suite, data
+ weights, every layer times its count, with convbp's picks and with each single strategy the
implementations declare used everywhere (oneDNN's auto, im2col + GEMM, cuDNN's legacy
algorithms as cudnnFind picks them), each with how many cases it covers, and the layers that
contribute most (docs/report.md, "network").
  --all         every result of every case, fastest first: status, median ms, GF/s, max_rel error
  --torch FILE  add PyTorch to the network total: FILE is scripts/torch_conv_bench.py's JSON
                (GPU; the TF32-allowed timings, PyTorch's default) or scripts/torch_cpu_bench.py's
                (CPU), measured on the same suite
)";

constexpr const char* kCasesUsage =
    R"(usage: convbp cases [SUITE|FILE] [--problem KEY] [--pass data|weights] [--shard I/N]
                    [--json|--benchdnn]

Prints the cases `convbp run` with the same arguments would measure, without measuring: per
layer and pass, the case name, the pass and the problem's canonical key, one case a line.
Scripts ask this rather than computing keys, output sizes or flops themselves.
  --problem KEY        this one problem instead of the suite's layers (as for run)
  --pass data|weights  only this pass
  --shard I/N          only the cases shard I of N would run (as for run; docs/cluster.md)
  --json               a JSON document instead (schema convbp.cases/1, docs/config.md): the
                       suite's name, source and file, the passes, and per case its name, key,
                       pass, count, shape fields, output size p and q, element counts of x, w,
                       dy and db, flops and accumulation length
  --benchdnn           the cases as oneDNN benchdnn batch-file lines (--dir=BWD_D / BWD_WB,
                       --dt and --stag/--dtag for a case not f32 NCHW, and on every line where
                       the cases mix them, and the descriptor; `benchdnn --conv --batch=FILE`
                       runs them, and convbp reads them back as a suite)
)";

// Whether run, validate and tune run every CPU candidate in a child process. Not by default:
// it cost 19% on the default suite (docs/isolation.md).
constexpr bool kIsolateByDefault = false;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

// First thing in a measuring command: a SIGINT or SIGTERM that arrives while the suite loads
// stops the run before its first case (exit 130) instead of being lost. (A background job of a
// script inherits SIGINT ignored; until this runs, that disposition stands.)
void catch_stop_signals() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "-h" || a == "--help") return true;
  }
  return false;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// An integer in [min, max], never truncated: a value beyond max (or beyond 64 bits) is an
// error, as is anything but decimal digits.
std::int64_t parse_int(const std::string& option, const std::string& value, std::int64_t min,
                       std::int64_t max) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  const bool digits = !value.empty() && end == value.data() + value.size();
  if (digits && (ec == std::errc::result_out_of_range || (ec == std::errc() && v > max))) {
    throw UsageError(option + ": expected an integer <= " + std::to_string(max) + ", got '" +
                     printable(value) + "'");
  }
  if (!digits || ec != std::errc() || v < min) {
    throw UsageError(option + ": expected an integer >= " + std::to_string(min) + ", got '" +
                     printable(value) + "'");
  }
  return v;
}

// A decimal number in [min, max]: digits with an optional fraction and exponent, as written
// in the docs; no sign, space, hex, inf or nan. `expected` says what was expected.
double parse_decimal(const std::string& option, const std::string& value, double min, double max,
                     const std::string& expected) {
  std::size_t used = 0;
  const std::optional<double> v = parse_decimal_prefix(value, &used);
  if (!v || used != value.size() || *v < min || *v > max) {
    throw UsageError(option + ": expected " + expected + ", got '" + printable(value) + "'");
  }
  return *v;
}

// Threads convbp asks of the libraries: at most kMaxThreads, and no more than the CPUs this
// process may use (check_threads).
constexpr std::int64_t kMaxThreads = 1024;

// The CPUs this process may run on (its affinity mask; every core where that is unknown).
int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

// After set_threads: more threads than usable CPUs would time the threads' contention, not the
// implementations (on 2 CPUs, 128 threads made a 5x5 problem take 12 s, and 1024 did not finish
// in a minute), so --threads, or OMP_NUM_THREADS where it sets the default, beyond them is an
// error.
void check_threads(bool option_given) {
  const int cpus = usable_cpus();
  if (threads() <= cpus) return;
  const char* env = std::getenv("OMP_NUM_THREADS");
  const std::string source = option_given ? "--threads " + std::to_string(threads())
                             : env        ? "OMP_NUM_THREADS=" + printable(env)
                                          : std::to_string(threads()) + " threads";
  throw UsageError(source + ": this process may use " + std::to_string(cpus) +
                   " CPU(s); more threads than that would time their contention, not the "
                   "implementations (--threads 1 to " +
                   std::to_string(cpus) + ")");
}

// A path convbp writes: checked (UTF-8, not empty, the folder exists and takes the file, what
// is there a regular file, and with `replaces` a file of that schema) before measuring.
void check_output(const std::string& option, const std::string& path,
                  const char* replaces = nullptr) {
  try {
    check_writable(path, replaces);
  } catch (const std::runtime_error& e) {
    throw UsageError(option + ": " + e.what());
  }
}

// A path option's value: never empty (an empty -o "$UNSET" would silently write nothing).
std::string path_value(const std::string& option, std::string value) {
  if (value.empty()) throw UsageError(option + ": an empty file name");
  return value;
}

// What --problem's peer line states beyond the problem: its one pass (--dir=BWD_D, -F 2), which
// --pass must not contradict. The last --problem given counts, as for every option (a wrapper's
// defaults can be overridden).
struct StatedPass {
  std::optional<Pass> pass;
  std::string by;

  // After parsing: the pass applies unless --pass says otherwise, and then they must agree.
  void resolve(RunOptions& options) const {
    if (!pass) return;
    if (options.pass && *options.pass != *pass) {
      throw UsageError("--pass " + std::string(to_string(*options.pass)) +
                       " contradicts --problem '" + printable(by) + "', which states the " +
                       to_string(*pass) + " pass");
    }
    options.pass = pass;
  }
};

const char* const kReportSchema = "convbp.report/1";

// A report must not replace the suite it measures (a file argument, not a suite's name).
void check_output_apart(const std::string& output, const std::string& suite_arg) {
  std::error_code ec;
  if (!suite_arg.empty() && std::filesystem::is_regular_file(suite_arg, ec) &&
      same_file(output, suite_arg)) {
    throw UsageError("-o " + printable(output) + ": the suite file itself; write the report " +
                     "elsewhere");
  }
}

// The --dump folder: created now, and proved writable, so that no case is measured in vain.
void prepare_dump_folder(const std::string& dir) {
  try {
    prepare_output_folder(dir, "index.json");
  } catch (const std::runtime_error& e) {
    throw UsageError("--dump: " + std::string(e.what()));
  }
}

using OptionValue = std::function<std::string()>;

// A command's arguments, walked once: `option(a, value)` takes an option the command knows and
// returns true (`value()` takes the next argument, a UsageError when there is none); another
// word that starts with '-' is an unknown option. The rest are the command's operands, in order,
// never empty ("$UNSET" would silently mean the default suite).
std::vector<std::string> walk_args(
    const std::vector<std::string>& args, const std::string& command,
    const std::function<bool(const std::string&, const OptionValue&)>& option) {
  std::vector<std::string> operands;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const OptionValue value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw UsageError(a + ": missing value");
      return args[++i];
    };
    if (option(a, value)) continue;
    if (!a.empty() && a[0] == '-') {
      throw UsageError("unknown option '" + printable(a) + "' (see convbp " + command + " --help)");
    }
    if (a.empty()) throw UsageError(command + ": an empty argument where a file was expected");
    operands.push_back(a);
  }
  return operands;
}

// The one suite a command takes, "" for the default.
std::string one_suite(const std::vector<std::string>& operands, const std::string& what) {
  if (operands.size() > 1) {
    throw UsageError("unexpected argument '" + printable(operands[1]) + "': " + what);
  }
  return operands.empty() ? "" : operands[0];
}

// The options `run`, `validate` and `tune` share. Returns false for any other argument.
bool parse_shared_option(const std::string& a, const OptionValue& value, RunOptions& options,
                         std::string& output, StatedPass& stated) {
  if (a == "-o" || a == "--output") {
    output = path_value(a, value());
  } else if (a == "--impl") {
    options.impls = split_commas(value());
    if (options.impls.empty()) throw UsageError("--impl: empty pattern list");
  } else if (a == "--pass") {
    const std::string v = value();
    options.pass = parse_pass(v);
    if (!options.pass) throw UsageError("--pass: expected data or weights, got '" + v + "'");
  } else if (a == "--threads") {
    options.threads = int(parse_int(a, value(), 1, kMaxThreads));
  } else if (a == "--reps") {
    options.reps = int(parse_int(a, value(), 1, kMaxReps));
  } else if (a == "--seed") {
    options.seed =
        std::uint64_t(parse_int(a, value(), 0, std::numeric_limits<std::int64_t>::max()));
  } else if (a == "--problem") {
    try {
      // A key, a benchdnn descriptor or an MIOpenDriver command (peer_formats.h); a single
      // pass it states (--dir=BWD_D, -F 2) applies, and --pass must agree
      // (StatedPass::resolve).
      const std::string text = value();
      const PeerProblem peer = parse_problem_argument(text);
      options.problem = peer.problem;
      stated = {};
      if (peer.passes.size() == 1) stated = {peer.passes[0], text};
    } catch (const PeerFormatError& e) {
      throw UsageError(std::string("--problem: ") + e.what());
    }
  } else if (a == "--shard") {
    try {
      options.shard = parse_shard(value());
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
  } else if (a == "--isolate") {
    options.isolate = true;
  } else if (a == "--no-isolate") {
    options.isolate = false;
  } else if (a == "--candidate-timeout") {
    // Below 0.1 s no candidate finishes planning, validation and timing.
    options.candidate_timeout_s =
        parse_decimal(a, value(), 0.1, 1e6, "seconds from 0.1 to 1000000");
  } else if (a == "-q" || a == "--quiet") {
    options.progress = false;
  } else {
    return false;
  }
  return true;
}

int cmd_list() {
  const BlasCore& core = blas_core();
  std::printf("OpenBLAS core: %s (%s)\n\n", core.running.c_str(), core.note.c_str());
  std::size_t width = 0;
  for (const Backward* b : registry()) width = std::max(width, b->name().size());
  std::vector<std::string> families;
  for (const Backward* b : registry()) {
    const Support s = b->available();
    std::printf("%-*s  %-4s  %s\n", int(width), b->name().c_str(), to_string(b->device()),
                s.ok ? "available" : ("unavailable: " + s.why).c_str());
    if (!b->members_named().empty()) {
      families.push_back(b->name() + " runs as " + b->members_named() +
                         (b->opt_in() ? " (opt-in: selected by its full name only)" : ""));
    }
  }
  if (!families.empty()) {
    std::printf(
        "\nFamilies run as the members each shape offers (reports and --impl use the members' "
        "names):\n");
    for (const std::string& f : families) std::printf("  %s\n", f.c_str());
  }
  // The roles the implementations declare (backward.h, Roles).
  std::string baseline_list, fallback_list;
  for (const Backward* b : baselines()) {
    baseline_list +=
        (baseline_list.empty() ? "" : ", ") + b->name() + " (" + to_string(b->device()) + ")";
  }
  for (const std::string& name : default_fallbacks()) {
    fallback_list += (fallback_list.empty() ? "" : ", ") + name;
  }
  std::printf("\nReference: %s\nSpeedup baselines: %s\nAutotuner's default fallbacks: %s\n",
              reference_backward().name().c_str(), baseline_list.c_str(), fallback_list.c_str());
  return 0;
}

int cmd_run(const std::vector<std::string>& args, bool validate_only) {
  catch_stop_signals();
  RunOptions options;
  options.isolate = kIsolateByDefault;
  options.validate_only = validate_only;
  options.progress = isatty(STDERR_FILENO);
  std::string output;
  StatedPass stated;
  auto run_option = [&](const std::string& a, const OptionValue& value) {
    if (a != "--dump") return parse_shared_option(a, value, options, output, stated);
    options.dump_dir = path_value(a, value());
    return true;
  };
  const std::string suite_arg = one_suite(
      walk_args(args, validate_only ? "validate" : "run", run_option), "only one suite per run");
  stated.resolve(options);
  const Suite suite = suite_arg.empty() ? default_suite() : load_suite_argument(suite_arg);
  set_threads(options.threads);
  check_threads(options.threads > 0);
  // Fail on an unknown pattern, a bad environment variable or an unwritable output before
  // measuring anything.
  check_environment(run_selection(suite, options));
  if (!output.empty()) {
    check_output_apart(output, suite_arg);
    const std::string& dump = options.dump_dir;
    if (!dump.empty() &&
        (same_file(output, dump) ||
         same_file(output, (std::filesystem::path(dump) / "index.json").string()))) {
      throw UsageError("-o " + printable(output) +
                       ": the --dump folder or its index.json, which the dump writes; write the "
                       "report elsewhere");
    }
  }
  // -o is checked before the dump folder is made (a bad -o leaves nothing behind), unless it
  // goes into that folder, which does not exist yet.
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool into_new_dump =
      !output.empty() && !options.dump_dir.empty() && !fs::exists(options.dump_dir, ec) &&
      same_file(fs::absolute(output, ec).parent_path().string(), options.dump_dir);
  if (!output.empty() && !into_new_dump) check_output("-o", output, kReportSchema);
  if (!options.dump_dir.empty()) prepare_dump_folder(options.dump_dir);
  if (into_new_dump) check_output("-o", output, kReportSchema);

  options.stop = &g_stop;
  auto save = [&](const Report& report) {
    if (!output.empty()) write_json_atomic(output, to_json(report));
  };
  const Report report = run_suite(suite, options, save);
  save(report);
  if (validate_only) {
    std::cout << validation_table(report);
  } else {
    const std::string network = network_tables(report);
    std::cout << winners_table(report, baseline_names()) << (network.empty() ? "" : "\n")
              << network;
  }
  std::cout << std::flush;
  int failures = 0;
  for (const Case& c : report.cases) {
    for (const Result& r : c.results) {
      // A hang is a failure of validation (validate has no timing, so no other timeout).
      if (r.status == Status::incorrect || r.status == Status::error ||
          r.status == Status::crashed || (validate_only && r.status == Status::timeout)) {
        std::cerr << c.name << " " << to_string(c.pass) << " " << r.impl << ": "
                  << to_string(r.status) << ": " << r.why << "\n";
        ++failures;
      }
    }
  }
  if (!output.empty()) std::cerr << "report written to " << output << "\n";
  if (!report.complete) {
    std::cerr << "interrupted: the report holds the " << report.cases.size()
              << " case(s) started and is marked incomplete\n";
    return 130;
  }
  // validate fails when any implementation is incorrect, failed, crashed or hung; run reports it
  // but succeeds.
  return validate_only && failures > 0 ? 1 : 0;
}

int cmd_cases(const std::vector<std::string>& args) {
  RunOptions options;
  StatedPass stated;
  bool json = false, benchdnn = false;
  auto cases_option = [&](const std::string& a, const OptionValue& value) {
    if (a == "--json") {
      json = true;
    } else if (a == "--benchdnn") {
      benchdnn = true;
    } else if (a == "--pass" || a == "--problem" || a == "--shard") {
      std::string unused_output;
      parse_shared_option(a, value, options, unused_output, stated);
    } else {
      return false;
    }
    return true;
  };
  const std::string suite_arg = one_suite(walk_args(args, "cases", cases_option), "only one suite");
  stated.resolve(options);
  const Suite suite = suite_arg.empty() ? default_suite() : load_suite_argument(suite_arg);
  const std::vector<CaseSpec> all_cases = expand_cases(suite, options);
  std::vector<CaseSpec> cases;
  for (std::size_t i : selected_cases(all_cases, options)) cases.push_back(all_cases[i]);
  if (json && benchdnn) throw UsageError("--json and --benchdnn: choose one output");
  if (benchdnn) {
    // A batch file's options carry to the lines after: where types or layouts differ, every
    // line states its own.
    const bool mixed = std::any_of(cases.begin(), cases.end(), [](const CaseSpec& c) {
      return c.problem.dtype != DType::f32 || c.problem.layout != Layout::nchw;
    });
    for (const CaseSpec& c : cases) {
      std::cout << to_benchdnn(c.problem, c.pass, c.name, mixed) << "\n";
    }
  } else {
    std::cout << (json ? cases_json(suite, cases) : cases_text(cases));
  }
  return 0;
}

int cmd_show(const std::vector<std::string>& args) {
  std::string torch_file;
  bool all = false;
  const std::vector<std::string> files =
      walk_args(args, "show", [&](const std::string& a, const OptionValue& value) {
        if (a == "--all") {
          all = true;
        } else if (a == "--torch") {
          torch_file = path_value(a, value());
        } else {
          return false;
        }
        return true;
      });
  if (files.size() != 1) throw UsageError("show: expected exactly one REPORT file");
  Report report;
  try {
    report = read_report(files[0]);
  } catch (const std::runtime_error& e) {
    throw UsageError(e.what());
  }
  std::optional<TorchTimes> torch;
  if (!torch_file.empty()) {
    try {
      torch = read_torch_times(torch_file);
    } catch (const std::runtime_error& e) {
      throw UsageError(std::string("--torch: ") + e.what());
    }
  }
  std::cout << (all ? results_table(report) : winners_table(report, baseline_names()));
  const std::string network = network_tables(report, torch ? &*torch : nullptr);
  if (!network.empty()) std::cout << "\n" << network;
  if (!report.complete) std::cout << "(incomplete report: the run was interrupted)\n";
  return 0;
}

constexpr const char* kTuneUsage = R"(usage: convbp tune [SUITE|FILE] --db FILE [options]

Validates and times like `convbp run`, and keeps for every layer shape and pass the ranked
correct results and the winner in a tuning database (schema convbp.tuning/1, docs/tuning.md)
that convbp::Autotuner reads at run time. Cases the database already holds under this
machine's fingerprint (CPU, threads, GPU, library and convbp versions) are not measured again;
entries under another fingerprint are kept but never used. The database is rewritten
atomically after every finished case, under a lock (FILE.lock) that concurrent tuners share.

options:
  --db FILE            the tuning database (created if missing; a file that is not a valid
                       database is an error and is left untouched)
  --retune             measure every case again with the selected implementations; their
                       results replace the entry's, the others' stay (--retune --impl X
                       re-measures X alone)
  --max-workspace N    choose only implementations needing at most N bytes of workspace
                       (a whole number of bytes; suffixes K, M, G: powers of 1024)
  --deterministic      choose only deterministic implementations (measured: two validated
                       calls with the same inputs agree bit for bit)
  --max-error REL      choose only implementations whose max_rel error is at most REL
                       (0 < REL <= 1)
  -o, --output FILE    also write a report (convbp.report/1), best chosen under the constraints
  --impl GLOB,... --pass data|weights --threads N --reps N --problem KEY --seed N -q
  --shard I/N
  --isolate --no-isolate --candidate-timeout S
                       as for `convbp run` (see convbp run --help); a candidate that crashed or
                       timed out is kept among the entry's rejected results

The constraints choose among what the database holds; every correct result is stored, so one
database serves callers with different constraints.
)";

int cmd_tune(const std::vector<std::string>& args) {
  catch_stop_signals();
  RunOptions options;
  options.isolate = kIsolateByDefault;
  options.progress = isatty(STDERR_FILENO);
  TuneSettings settings;
  std::string output;
  StatedPass stated;
  auto tune_option = [&](const std::string& a, const OptionValue& value) {
    if (a == "--db") {
      settings.database = path_value(a, value());
    } else if (a == "--retune") {
      settings.retune = true;
    } else if (a == "--max-workspace") {
      const std::string v = value();
      settings.constraints.max_workspace_bytes = parse_bytes(v);
      if (!settings.constraints.max_workspace_bytes) {
        throw UsageError(
            "--max-workspace: expected a whole number of bytes (e.g. 1048576, 64K, 1.5M), got '" +
            printable(v) + "'");
      }
    } else if (a == "--deterministic") {
      settings.constraints.deterministic_only = true;
    } else if (a == "--max-error") {
      const std::string v = value();
      const double e = parse_decimal(a, v, 0, 1, "a number > 0 and <= 1");
      if (e == 0) {
        throw UsageError("--max-error: expected a number > 0 and <= 1, got '" + printable(v) + "'");
      }
      settings.constraints.max_rel_error = e;
    } else {
      return parse_shared_option(a, value, options, output, stated);
    }
    return true;
  };
  const std::string suite_arg =
      one_suite(walk_args(args, "tune", tune_option), "only one suite per run");
  if (settings.database.empty()) throw UsageError("tune: --db FILE is required");
  stated.resolve(options);
  const Suite suite = suite_arg.empty() ? default_suite() : load_suite_argument(suite_arg);
  set_threads(options.threads);
  check_threads(options.threads > 0);
  check_environment(run_selection(suite, options));
  check_output("--db", settings.database);
  if (!output.empty()) {
    if (same_file(output, settings.database)) {
      throw UsageError("-o and --db name one file, " + printable(output) +
                       ": the report would replace the database");
    }
    check_output_apart(output, suite_arg);
    check_output("-o", output, kReportSchema);
  }
  options.stop = &g_stop;
  TuneOutcome outcome;
  try {
    outcome = tune_suite(suite, options, settings, [&](const Report& report) {
      if (!output.empty()) write_json_atomic(output, to_json(report));
    });
  } catch (const TuningError& e) {
    throw UsageError(e.what());
  }
  const std::string network = network_tables(outcome.report);
  std::cout << tune_table(outcome, settings.constraints) << (network.empty() ? "" : "\n") << network
            << std::flush;
  for (const std::string& note : outcome.notes) std::cerr << "note: " << note << "\n";
  std::cerr << outcome.report.cases.size() << " cases: " << outcome.measured << " measured, "
            << outcome.from_database << " from the database " << settings.database << "\n";
  if (!output.empty()) std::cerr << "report written to " << output << "\n";
  if (!outcome.report.complete) {
    std::cerr << "interrupted: the database keeps every finished case; the report is marked "
                 "incomplete\n";
    return 130;
  }
  return 0;
}

constexpr const char* kMergeUsage =
    R"(usage: convbp merge -o OUT FILE... [--duplicates error|first|last]

Combines what shards measured (docs/cluster.md). The FILEs are all reports (convbp.report/1) or
all tuning databases (convbp.tuning/1), told apart by their schema.

Reports: OUT is written as one report. Shards' reports (`run|tune --shard I/N -o`) must be
every shard of one run (the same N, suite, implementations, seed and timing; each shard once):
their cases come back in the suite's order, as the unsharded run has them. Reports that are not
shards are joined in the order given. The same case (name, key and pass) in two reports is an
error unless --duplicates says which to keep: the first or the last given (each one is noted
on stderr). The merged context is the first report's; settings.merged lists every input.

Tuning databases: merged into OUT (created if missing; its entries take part), under OUT.lock
and written atomically, as `convbp tune` writes. Entries stay under their machine fingerprint.
An entry of the same fingerprint, key and pass in two files is merged as docs/tuning.md states
for a re-tune: the newer measurement's results (by the entries' dates) replace the older's for
the implementations it tried, the others stay, and the best is chosen again; each such merge is
noted on stderr.

options:
  -o, --output OUT     the merged report, or the database to merge into (required)
  --duplicates RULE    reports only: error (default), first or last
)";

int cmd_merge(const std::vector<std::string>& args) {
  std::string output;
  OnDuplicate rule = OnDuplicate::error;
  const std::vector<std::string> files =
      walk_args(args, "merge", [&](const std::string& a, const OptionValue& value) {
        if (a == "-o" || a == "--output") {
          output = path_value(a, value());
        } else if (a == "--duplicates") {
          const std::string v = value();
          if (v == "error") {
            rule = OnDuplicate::error;
          } else if (v == "first") {
            rule = OnDuplicate::first;
          } else if (v == "last") {
            rule = OnDuplicate::last;
          } else {
            throw UsageError("--duplicates: expected error, first or last, got '" + printable(v) +
                             "'");
          }
        } else {
          return false;
        }
        return true;
      });
  if (output.empty()) throw UsageError("merge: -o OUT is required");
  if (files.empty()) throw UsageError("merge: expected one or more FILEs to merge");
  std::vector<MergeKind> kinds;
  try {
    for (const std::string& f : files) kinds.push_back(merge_kind(f));
  } catch (const MergeError& e) {
    throw UsageError(e.what());
  }
  // Merged reports replace only a report (an input among them too: the merge holds its cases);
  // a database is merged into, and read as one first.
  check_output("-o", output, kinds[0] == MergeKind::report ? kReportSchema : nullptr);
  for (std::size_t i = 1; i < files.size(); ++i) {
    if (kinds[i] != kinds[0]) {
      throw UsageError(files[i] + " and " + files[0] +
                       ": one is a report, the other a tuning database; merge them apart");
    }
  }
  std::vector<std::string> notes;
  if (kinds[0] == MergeKind::tuning) {
    TuningDb db;
    try {
      db = merge_databases_into_file(output, files, notes);
    } catch (const TuningError& e) {
      throw UsageError(e.what());
    }
    for (const std::string& note : notes) std::cerr << "note: " << note << "\n";
    std::cerr << db.entry_count() << " entries in " << db.sections.size()
              << " fingerprint section(s) written to " << output << "\n";
    return 0;
  }
  std::vector<ReportInput> inputs;
  Report merged;
  try {
    for (const std::string& f : files) inputs.push_back({f, read_report(f)});
    merged = merge_reports(inputs, rule, notes);
  } catch (const std::runtime_error& e) {
    throw UsageError(e.what());
  }
  write_json_atomic(output, to_json(merged));
  for (const std::string& note : notes) std::cerr << "note: " << note << "\n";
  std::cerr << merged.cases.size() << " cases from " << files.size() << " reports written to "
            << output << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else: OpenBLAS picked its kernels when it loaded, and a CPU newer than the
  // library gets generic ones; this re-executes once with the best core (impls/blas_core.h).
  reexec_with_best_blas_core(argv);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "convbp " << convbp_version() << " (sources " << convbp_source_hash() << ")\n";
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "list") {
      if (wants_help(args)) return std::cout << kListUsage, 0;
      if (!args.empty()) {
        throw UsageError("unexpected argument '" + printable(args[0]) + "': list takes none");
      }
      return cmd_list();
    }
    if (command == "run" || command == "validate") {
      if (wants_help(args)) return std::cout << kRunUsage, 0;
      return cmd_run(args, command == "validate");
    }
    if (command == "tune") {
      if (wants_help(args)) return std::cout << kTuneUsage, 0;
      return cmd_tune(args);
    }
    if (command == "cases") {
      if (wants_help(args)) return std::cout << kCasesUsage, 0;
      return cmd_cases(args);
    }
    if (command == "merge") {
      if (wants_help(args)) return std::cout << kMergeUsage, 0;
      return cmd_merge(args);
    }
    if (command == "show") {
      if (wants_help(args)) return std::cout << kShowUsage, 0;
      return cmd_show(args);
    }
    throw UsageError("unknown command '" + command + "' (see convbp --help)");
  } catch (const UsageError& e) {
    std::cerr << "convbp: " << e.what() << "\n";
    return 2;
  } catch (const ConfigError& e) {
    std::cerr << "convbp: " << e.what() << "\n";
    return 2;
  } catch (const SelectionError& e) {
    std::cerr << "convbp: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "convbp: error: " << e.what() << "\n";
    return 1;
  }
}
