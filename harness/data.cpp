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

// Fills a tensor with the stream `seed`: element i of the logical order, rounded to the dtype,
// at its stored position.
void fill(const ConvProblem& pr, TensorKind tensor, Buffer& b, std::uint64_t seed) {
  const StoredIndex at(pr, tensor);
  for (std::size_t i = 0; i < b.size(); ++i)
    b.set(std::size_t(at(std::int64_t(i))), uniform_at(seed, i));
}

// Puts back the elements of `in` that differ from the stream; "" or what changed.
std::string restore(const ConvProblem& pr, TensorKind tensor, Buffer& in, std::uint64_t seed,
                    const char* name) {
  if (in.empty()) return "";
  const std::size_t bytes = dtype_size(in.dtype());
  Buffer fresh(in.dtype(), 1);
  std::size_t changed = 0, first = 0;
  auto* stored = static_cast<unsigned char*>(in.data());
  const StoredIndex stored_at(pr, tensor);
  for (std::size_t i = 0; i < in.size(); ++i) {
    fresh.set(0, uniform_at(seed, i));
    const std::size_t at = std::size_t(stored_at(std::int64_t(i)));
    // Bitwise: a NaN written over an input differs too.
    if (std::memcmp(stored + at * bytes, fresh.data(), bytes) != 0) {
      if (changed++ == 0) first = at;
      std::memcpy(stored + at * bytes, fresh.data(), bytes);
    }
  }
  if (changed == 0) return "";
  return std::string(name) + ": " + std::to_string(changed) + " element(s) changed, first at " +
         logical_index_string(pr, tensor, std::int64_t(first));
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

Buffer::Buffer(DType dtype, std::size_t elems)
    : dtype_(dtype), size_(elems), storage_((elems * dtype_size(dtype) + 3) / 4) {}

std::vector<float> Buffer::floats() const {
  std::vector<float> v(size_);
  for (std::size_t i = 0; i < size_; ++i) v[i] = float(at(i));
  return v;
}

void Buffer::poison() {
  // 0xff bytes: a NaN in every dtype (all-ones exponent, nonzero significand).
  if (!empty()) std::memset(storage_.data(), 0xff, bytes());
}

std::int64_t Buffer::first_difference(const Buffer& other) const {
  if (dtype_ != other.dtype_ || size_ != other.size_) return 0;
  if (empty() || std::memcmp(data(), other.data(), bytes()) == 0) return -1;
  const std::size_t e = dtype_size(dtype_);
  const auto* a = static_cast<const unsigned char*>(data());
  const auto* b = static_cast<const unsigned char*>(other.data());
  for (std::size_t i = 0; i < size_; ++i) {
    if (std::memcmp(a + i * e, b + i * e, e) != 0) return std::int64_t(i);
  }
  return -1;
}

std::string logical_index_string(const ConvProblem& pr, TensorKind tensor, std::int64_t stored) {
  const std::vector<std::int64_t> l = logical_shape(pr, tensor);
  if (pr.layout == Layout::nchw || tensor == TensorKind::b) return index_string(stored, l);
  // Stored order [d0, d2, d3, d1] back to the logical flat index.
  const std::int64_t d1 = stored % l[1], d3 = (stored / l[1]) % l[3],
                     d2 = (stored / (l[1] * l[3])) % l[2], d0 = stored / (l[1] * l[3] * l[2]);
  return index_string(((d0 * l[1] + d1) * l[2] + d2) * l[3] + d3, l);
}

std::vector<double> to_logical(const ConvProblem& pr, TensorKind tensor, const Buffer& b) {
  return load_logical(pr, tensor, b.data(), b.size());
}

void from_logical(const ConvProblem& pr, TensorKind tensor, const std::vector<double>& v,
                  Buffer& b) {
  store_logical(pr, tensor, v, b.data());
}

std::vector<double> to_stored_order(const ConvProblem& pr, TensorKind tensor,
                                    const std::vector<double>& v) {
  std::vector<double> out(v.size());
  const StoredIndex at(pr, tensor);
  for (std::size_t i = 0; i < v.size(); ++i) out[std::size_t(at(std::int64_t(i)))] = v[i];
  return out;
}

CaseData::CaseData(const ConvProblem& pr, Pass pass, std::uint64_t seed) : problem(pr), seed(seed) {
  // Each tensor gets its own stream so that the data pass and the weights pass of a layer see
  // the same dy (and the same x / w) for a given seed.
  dy = Buffer(pr.dtype, pr.y_elems());
  fill(pr, TensorKind::dy, dy, seed * 3 + 2);
  if (pass == Pass::data) {
    w = Buffer(pr.dtype, pr.w_elems());
    fill(pr, TensorKind::w, w, seed * 3 + 1);
    dx = Buffer(pr.dtype, pr.x_elems());
  } else {
    x = Buffer(pr.dtype, pr.x_elems());
    fill(pr, TensorKind::x, x, seed * 3 + 0);
    dw = Buffer(pr.dtype, pr.w_elems());
    db = Buffer(pr.dtype, pr.b_elems());
  }
  poison_outputs();
}

Tensors CaseData::tensors() {
  return Tensors{x.data(),  w.data(),  dy.data(),     dx.data(),
                 dw.data(), db.data(), problem.dtype, problem.layout};
}

void CaseData::poison_outputs() {
  dx.poison();
  dw.poison();
  db.poison();
}

std::string CaseData::restore_inputs(const ConvProblem& pr) {
  // The streams of the constructor.
  std::string out;
  auto add = [&](std::string part) {
    if (!part.empty()) out += (out.empty() ? "" : "; ") + part;
  };
  add(restore(pr, TensorKind::x, x, seed * 3 + 0, "x"));
  add(restore(pr, TensorKind::w, w, seed * 3 + 1, "w"));
  add(restore(pr, TensorKind::dy, dy, seed * 3 + 2, "dy"));
  return out;
}

std::size_t CaseData::bytes_needed(const ConvProblem& pr, Pass pass) {
  // Inputs and outputs in the dtype, one copy of the outputs (the first call's, for the
  // determinism check), and the reference in fp64; unless the problem is f32 NCHW (which the
  // reference and the comparison read where it lies), the logical fp64 copies of the inputs
  // and of the output being checked.
  const std::size_t outputs =
      pass == Pass::data ? std::size_t(pr.x_elems()) : std::size_t(pr.w_elems() + pr.b_elems());
  const std::size_t inputs =
      std::size_t(pr.y_elems()) + (pass == Pass::data ? pr.w_elems() : pr.x_elems());
  const bool direct = pr.dtype == DType::f32 && pr.layout == Layout::nchw;
  return (inputs + 2 * outputs) * dtype_size(pr.dtype) +
         (direct ? outputs : inputs + 2 * outputs) * sizeof(double);
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
