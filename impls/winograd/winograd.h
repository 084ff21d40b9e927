// The winograd family's internal interface: one plan maker per pass, for a tile size m (2:
// F(2x2,3x3), 4: F(4x4,3x3)). winograd.cpp registers the variants and decides what they
// support; data_pass.cpp and weights_pass.cpp do the work. Callers have checked the shape
// (3x3, stride 1, dilation 1) and the CPU (AVX2 and FMA).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "backward.h"

namespace convbp::winograd {

std::unique_ptr<Plan> make_data_plan(const ConvProblem& problem, int m);
std::unique_ptr<Plan> make_weights_plan(const ConvProblem& problem, int m);

// Workspace carving: every region starts on a 64-byte line, so that aligned vector loads work
// and no two threads' regions share a cache line. floats_bytes: the bytes `count` floats take,
// rounded up to whole lines.
inline constexpr std::size_t kAlign = 64;
inline std::size_t floats_bytes(std::int64_t count) {
  return (std::size_t(count) * sizeof(float) + kAlign - 1) / kAlign * kAlign;
}
inline float* align_up(void* p) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  return reinterpret_cast<float*>((address + kAlign - 1) / kAlign * kAlign);
}

inline std::int64_t round_up(std::int64_t value, std::int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// Distance in floats between the alpha^2 matrices of one transformed tensor: whole cache lines,
// an odd number of them. A transform reads or writes one element of every matrix; with a
// stride of an even number of lines (a power of two, often) those alpha^2 accesses would fall
// into a few cache sets and evict each other.
inline std::int64_t matrix_stride(std::int64_t floats) {
  const std::int64_t lines = (floats + 15) / 16;
  return (lines | 1) * 16;
}

}  // namespace convbp::winograd
