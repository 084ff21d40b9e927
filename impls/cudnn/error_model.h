// The error model of the cuDNN entries: how far an fp32 result of each class of algorithm may
// lie from the fp64 reference, relative to the output's scale (the harness's max_rel and
// rel_l2), on a given problem and pass. Validation uses it; docs/cudnn.md gives the reasoning
// next to the errors measured on an H200, and tests/test_error_model.cpp holds it against them
// (tests/data/cudnn_errors_h200_2026-11-30.csv).
//
// Plain C++ (no CUDA headers): the model is tested on every machine.
#pragma once

#include <cstdint>
#include <string>

#include "backward.h"
#include "problem.h"

namespace convbp::cudnn {

enum class Method { direct, fft, winograd };

// What decides an algorithm's error: how it computes (direct summation, FFT, Winograd with an
// output tile of m x m), where (CUDA cores in fp32, or tensor cores: on TF32 inputs for f32
// tensors, on the tensors' own bf16 or f16 values otherwise) and the tensors' dtype.
struct AlgorithmClass {
  Method method = Method::direct;
  bool tensor_cores = false;
  int winograd_tile = 4;  // m of F(m x m, r x r); the tile transformed is (m + r - 1)^2
  DType dtype = DType::f32;

  std::string describe() const;  // "Winograd F(4x4, r x s) on CUDA cores (fp32)"
};

// An engine's numerical notes (CUDNN_NUMERICAL_NOTE_*), as plain flags.
struct EngineNotes {
  bool tensor_core = false;
  bool fft = false;
  bool winograd = false;  // WINOGRAD or any WINOGRAD_TILE_* note
  int winograd_tile = 0;  // 4, 6 or 13 from a WINOGRAD_TILE_* note; 0 without one
};

// An engine configuration's class: from its notes, or, for an engine whose notes do not name
// its transform, from what it was measured to be (error_model.cpp: engine 17 is Winograd).
AlgorithmClass engine_class(std::int64_t engine, const EngineNotes& notes,
                            DType dtype = DType::f32);

// A legacy algorithm's class, by its entry's name ("algo1", "fft_tiling", "winograd_nonfused")
// and math type; an unknown name is taken as direct.
AlgorithmClass legacy_class(const std::string& algorithm, bool tensor_op_math,
                            DType dtype = DType::f32);

// The bound on max_rel and rel_l2 for `cls` on (problem, pass):
//   16 u c sqrt(max(L, 4))       accumulation of L terms, c = 1 on CUDA cores, 4 on tensor cores
// + 4 (u_in A - u)               input rounding (u_in: 2^-24 fp32, 2^-11 TF32) amplified by the
//                                Winograd transforms (A = 1 unless Winograd); for bf16 and f16
//                                tensors the inputs are exact, and only a transform's output
//                                fed to tensor cores is rounded, to the dtype (u_in 2^-8, 2^-11)
// The output's own rounding to bf16 or f16 is the harness's term (tolerance_for's dtype), not
// this model's.
// + 8 u log2(N)                  FFT only: forward and inverse transforms of N points
// with u = 2^-24. Reasoning and measurements: docs/cudnn.md.
double error_bound(const AlgorithmClass& cls, const ConvProblem& problem, Pass pass);

// error_bound as a factor on the harness's fp32 accumulation bound (impls/tolerance.cpp
// tolerance_for, which adds a 16-bit output's rounding on top):
// what Plan::tolerance_factor returns.
double tolerance_factor(const AlgorithmClass& cls, const ConvProblem& problem, Pass pass);

// The largest factor over every problem, for an entry that knows only its class.
double tolerance_factor_bound(const AlgorithmClass& cls);

// A bound above this (of the output's scale) cannot tell a right answer from a wrong one: an
// entry whose model exceeds it on a problem declines the problem (validation_support).
constexpr double kLargestUsefulBound = 0x1p-5;

// yes, or no with the bound and why it is too loose to validate.
Support validation_support(const AlgorithmClass& cls, const ConvProblem& problem, Pass pass);

}  // namespace convbp::cudnn
