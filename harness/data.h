// Seeded test data and output buffers for one case.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backward.h"
#include "dtype.h"
#include "layout.h"

namespace convbp {

// Fills `out` with values uniform in [-1, 1) from a counter-based generator (splitmix64), so
// the same seed gives the same data on every machine and compiler.
void fill_uniform(std::vector<float>& out, std::uint64_t seed);

// Poisons outputs with quiet NaN so that an element an implementation never writes is caught.
void poison(std::vector<float>& out);

// The host memory of one tensor: `size()` elements of a dtype (float, bfloat16 or float16,
// dtype.h), aligned for float.
class Buffer {
 public:
  Buffer() = default;
  Buffer(DType dtype, std::size_t elems);
  DType dtype() const { return dtype_; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return size_ * dtype_size(dtype_); }
  bool empty() const { return size_ == 0; }
  void* data() { return empty() ? nullptr : storage_.data(); }
  const void* data() const { return empty() ? nullptr : storage_.data(); }
  template <typename T>
  const T* data_as() const {
    return static_cast<const T*>(data());
  }
  // Element i, converted exactly to double.
  double at(std::size_t i) const { return load_as_double(dtype_, storage_.data(), i); }
  // Every element as float (exact for every dtype), in stored order.
  std::vector<float> floats() const;
  // Stores v rounded to the dtype.
  void set(std::size_t i, double v) { store_from_double(dtype_, storage_.data(), i, v); }
  // Quiet NaN in every element.
  void poison();
  // The first element whose bits differ from `other`'s, or -1 when none does.
  std::int64_t first_difference(const Buffer& other) const;

 private:
  DType dtype_ = DType::f32;
  std::size_t size_ = 0;
  std::vector<float> storage_;  // float keeps the alignment every dtype needs
};

// "[0,3,1,2]" in the logical order [n, c, h, w] (etc.) for a stored flat index.
std::string logical_index_string(const ConvProblem& problem, TensorKind tensor,
                                 std::int64_t stored);
// A stored buffer in the reference's order and precision: logical NCHW, as doubles (exact for
// every dtype).
std::vector<double> to_logical(const ConvProblem& problem, TensorKind tensor, const Buffer& b);
// The inverse: logical doubles, rounded to the problem's dtype, in the problem's layout.
void from_logical(const ConvProblem& problem, TensorKind tensor, const std::vector<double>& v,
                  Buffer& b);
// Logical doubles permuted to the problem's layout, kept as doubles (the dumped reference).
std::vector<double> to_stored_order(const ConvProblem& problem, TensorKind tensor,
                                    const std::vector<double>& v);

// The inputs and outputs of one case, in the problem's dtype and layout. Inputs are the seed's
// uniform values in [-1, 1), rounded to the dtype, generated in the logical order (so every
// layout of a problem sees the same values, and f32 NCHW the values of every earlier version).
// Outputs are re-poisoned before every implementation's validation run.
struct CaseData {
  CaseData(const ConvProblem& problem, Pass pass, std::uint64_t seed);
  Tensors tensors();
  void poison_outputs();
  // Compares the inputs with the seed's data and puts back any element that differs; says
  // which input changed, how many elements and where the first is ("dy: 2 element(s) changed,
  // first at [0,1,0,3]"), or "" when none did.
  std::string restore_inputs(const ConvProblem& problem);
  // Bytes a case of `problem` holds: inputs, outputs and the fp64 reference.
  static std::size_t bytes_needed(const ConvProblem& problem, Pass pass);

  ConvProblem problem;
  Buffer x, w, dy;    // inputs (x unused by the data pass, w by the weights pass)
  Buffer dx, dw, db;  // outputs
  std::uint64_t seed = 0;
};

// Memory the process can still use without the kernel reclaiming it (Linux: MemAvailable,
// bounded by the address-space limit); SIZE_MAX when unknown. Under overcommit an allocation
// larger than this succeeds and the process is killed when it touches the pages, so the
// harness checks sizes against it before allocating.
std::size_t available_memory();
// Tests: pretend that only `bytes` are available (nullopt: the real figure again).
void set_available_memory_for_testing(std::optional<std::size_t> bytes);

// Thrown before an allocation of more than available_memory(); what() starts "out of memory".
struct OutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Throws OutOfMemory naming `what` when `bytes` exceed available_memory().
void require_memory(std::size_t bytes, const std::string& what);

}  // namespace convbp
