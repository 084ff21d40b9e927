#include "data.h"

#include <limits>

namespace convbp {

void fill_uniform(std::vector<float>& out, std::uint64_t seed) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + (i + 1) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    // Top 24 bits -> a float in [-1, 1) exactly representable (multiples of 2^-23).
    out[i] = float(std::int64_t(z >> 40) - (std::int64_t{1} << 23)) * 0x1p-23f;
  }
}

void poison(std::vector<float>& out) {
  std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
}

CaseData::CaseData(const ConvProblem& pr, Pass pass, std::uint64_t seed) {
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

}  // namespace convbp
