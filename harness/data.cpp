#include "data.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>

#include "tuning.h"
#include "validate.h"

namespace convbp {

namespace {

// Element i of the stream `seed`: counter-based, so any element can be regenerated alone.
float uniform_at(std::uint64_t seed, std::size_t i) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + (i + 1) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  // Top 24 bits -> a float in [-1, 1) exactly representable (multiples of 2^-23).
  return float(std::int64_t(z >> 40) - (std::int64_t{1} << 23)) * 0x1p-23f;
}

// Puts back the elements of `in` that differ from the stream; "" or what changed.
std::string restore(std::vector<float>& in, std::uint64_t seed, const char* name,
                    const std::vector<std::int64_t>& shape) {
  std::size_t changed = 0, first = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float v = uniform_at(seed, i);
    // Bitwise: a NaN written over an input differs too.
    if (std::memcmp(&in[i], &v, sizeof v) != 0) {
      if (changed++ == 0) first = i;
      in[i] = v;
    }
  }
  if (changed == 0) return "";
  return std::string(name) + ": " + std::to_string(changed) + " element(s) changed, first at " +
         index_string(std::int64_t(first), shape);
}

std::mutex g_memory_mutex;
std::optional<std::size_t> g_memory_for_testing;

}  // namespace

void fill_uniform(std::vector<float>& out, std::uint64_t seed) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = uniform_at(seed, i);
}

void poison(std::vector<float>& out) {
  std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
}

CaseData::CaseData(const ConvProblem& pr, Pass pass, std::uint64_t seed) : seed(seed) {
  // Each tensor gets its own stream so that the data pass and the weights pass of a layer see
  // the same dy (and the same x / w) for a given seed.
  dy.resize(pr.y_elems());
  fill_uniform(dy, seed * 3 + 2);
  if (pass == Pass::data) {
    w.resize(pr.w_elems());
    fill_uniform(w, seed * 3 + 1);
    dx.resize(pr.x_elems());
  } else {
    x.resize(pr.x_elems());
    fill_uniform(x, seed * 3 + 0);
    dw.resize(pr.w_elems());
    db.resize(pr.b_elems());
  }
  poison_outputs();
}

Tensors CaseData::tensors() {
  return Tensors{x.empty() ? nullptr : x.data(),
                 w.empty() ? nullptr : w.data(),
                 dy.data(),
                 dx.empty() ? nullptr : dx.data(),
                 dw.empty() ? nullptr : dw.data(),
                 db.empty() ? nullptr : db.data()};
}

void CaseData::poison_outputs() {
  poison(dx);
  poison(dw);
  poison(db);
}

std::string CaseData::restore_inputs(const ConvProblem& pr) {
  // The streams of the constructor.
  std::string out;
  auto add = [&](std::string part) {
    if (!part.empty()) out += (out.empty() ? "" : "; ") + part;
  };
  add(restore(x, seed * 3 + 0, "x", {pr.n, pr.c, pr.h, pr.w}));
  add(restore(w, seed * 3 + 1, "w", {pr.k, pr.c_per_group(), pr.r, pr.s}));
  add(restore(dy, seed * 3 + 2, "dy", {pr.n, pr.k, pr.p(), pr.q()}));
  return out;
}

std::size_t CaseData::bytes_needed(const ConvProblem& pr, Pass pass) {
  // Inputs and outputs in fp32, the reference in fp64, and one copy of the outputs (the first
  // call's, for the determinism check).
  const std::size_t outputs =
      pass == Pass::data ? std::size_t(pr.x_elems()) : std::size_t(pr.w_elems() + pr.b_elems());
  const std::size_t inputs =
      std::size_t(pr.y_elems()) + (pass == Pass::data ? pr.w_elems() : pr.x_elems());
  return (inputs + 2 * outputs) * sizeof(float) + outputs * sizeof(double);
}

std::size_t available_memory() {
  {
    std::lock_guard<std::mutex> lock(g_memory_mutex);
    if (g_memory_for_testing) return *g_memory_for_testing;
  }
  std::size_t bytes = std::numeric_limits<std::size_t>::max();
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream in(line);
    std::string key;
    std::size_t kib = 0;
    if (in >> key >> kib && key == "MemAvailable:") {
      bytes = kib * 1024;
      break;
    }
  }
  // An address-space limit (ulimit -v) fails the allocation itself, but counts what is mapped
  // already; a rough bound is enough here.
  rlimit limit{};
  if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    bytes = std::min<std::size_t>(bytes, limit.rlim_cur);
  }
  return bytes;
}

void set_available_memory_for_testing(std::optional<std::size_t> bytes) {
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  g_memory_for_testing = bytes;
}

void require_memory(std::size_t bytes, const std::string& what) {
  const std::size_t available = available_memory();
  if (bytes > available) {
    throw OutOfMemory("out of memory: " + what + " needs " + format_bytes(bytes) + ", " +
                      format_bytes(available) + " available");
  }
}

}  // namespace convbp
