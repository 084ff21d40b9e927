// Where each element of a tensor lives in memory, for either layout, and conversion between a
// stored buffer of any dtype and the logical NCHW doubles the fp64 reference works on.
#pragma once

#include <cstdint>
#include <vector>

#include "dtype.h"
#include "problem.h"

namespace convbp {

// The tensors of a problem. Logical (reference) order is NCHW: [n, c, h, w] for x and dx,
// [k, c/g, r, s] for w and dw, [n, k, p, q] for dy. The stored order is the problem's layout:
// NHWC moves the channel dimension (the second) last: [n, h, w, c], [k, r, s, c/g], [n, p, q, k].
// b (db) is [k] in both.
enum class TensorKind { x, w, dy, b };

inline std::vector<std::int64_t> logical_shape(const ConvProblem& pr, TensorKind tensor) {
  switch (tensor) {
    case TensorKind::x:
      return {pr.n, pr.c, pr.h, pr.w};
    case TensorKind::w:
      return {pr.k, pr.c_per_group(), pr.r, pr.s};
    case TensorKind::dy:
      return {pr.n, pr.k, pr.p(), pr.q()};
    case TensorKind::b:
      break;
  }
  return {pr.k};
}

inline std::vector<std::int64_t> stored_shape(const ConvProblem& pr, TensorKind tensor) {
  std::vector<std::int64_t> shape = logical_shape(pr, tensor);
  if (pr.layout == Layout::nhwc && shape.size() == 4) {
    shape = {shape[0], shape[2], shape[3], shape[1]};
  }
  return shape;
}

// The stored position of the element at logical flat index i, with the shape worked out once
// (the loops over every element below call it millions of times).
class StoredIndex {
 public:
  StoredIndex(const ConvProblem& pr, TensorKind tensor)
      : identity_(pr.layout == Layout::nchw || tensor == TensorKind::b) {
    if (identity_) return;
    if (tensor == TensorKind::x) {
      l_[0] = pr.n, l_[1] = pr.c, l_[2] = pr.h, l_[3] = pr.w;
    } else if (tensor == TensorKind::w) {
      l_[0] = pr.k, l_[1] = pr.c_per_group(), l_[2] = pr.r, l_[3] = pr.s;
    } else {
      l_[0] = pr.n, l_[1] = pr.k, l_[2] = pr.p(), l_[3] = pr.q();
    }
  }
  std::int64_t operator()(std::int64_t i) const {
    if (identity_) return i;
    const std::int64_t d3 = i % l_[3], d2 = (i / l_[3]) % l_[2], d1 = (i / (l_[3] * l_[2])) % l_[1],
                       d0 = i / (l_[3] * l_[2] * l_[1]);
    return ((d0 * l_[2] + d2) * l_[3] + d3) * l_[1] + d1;
  }

 private:
  bool identity_;
  std::int64_t l_[4] = {1, 1, 1, 1};
};

inline std::int64_t stored_index(const ConvProblem& pr, TensorKind tensor, std::int64_t i) {
  return StoredIndex(pr, tensor)(i);
}

// A stored buffer of `elems` elements of the problem's dtype, as logical doubles (exact).
inline std::vector<double> load_logical(const ConvProblem& pr, TensorKind tensor, const void* data,
                                        std::size_t elems) {
  std::vector<double> v(elems);
  const StoredIndex at(pr, tensor);
  for (std::size_t i = 0; i < elems; ++i) {
    v[i] = load_as_double(pr.dtype, data, std::size_t(at(std::int64_t(i))));
  }
  return v;
}

// Logical doubles rounded to the problem's dtype, stored in its layout.
inline void store_logical(const ConvProblem& pr, TensorKind tensor, const std::vector<double>& v,
                          void* data) {
  const StoredIndex at(pr, tensor);
  for (std::size_t i = 0; i < v.size(); ++i) {
    store_from_double(pr.dtype, data, std::size_t(at(std::int64_t(i))), v[i]);
  }
}

}  // namespace convbp
