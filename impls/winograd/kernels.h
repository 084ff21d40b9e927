// The two FMA micro-kernels behind the transform-domain matrix products.
//
// Own kernels rather than OpenBLAS: the products are many and small (one per transform position
// and tile block: [c x k] x [k x 48..264]) and the transforms already lay their operands out as
// a packed GEMM wants them, so a library call only adds its own packing and per-call overhead.
// Measured on the data pass's products, this kernel runs 10-18% faster than OpenBLAS sgemm on
// the same matrices (docs/winograd.md).
#pragma once

#include <cstdint>

#include "transforms.h"

namespace convbp::winograd {

// The data pass: m[i][j] = sum_k u[k][i] * v[k][j] for a 4 x 8NV block (4 channels of dx, 8NV
// tiles), with u packed [k][4] and v packed [k][8NV]. With NV = 3, 12 accumulators and 3 loads
// plus 4 broadcasts per 12 FMAs: the register blocking of the AVX2 SGEMM kernels (oneDNN,
// OpenBLAS Haswell). NV = 1, 2 serve the last, narrower panel of a block.
template <int NV>
CONVBP_AVX2_INLINE void gemm_4xn(std::int64_t depth, const float* u, const float* v, float* m,
                                 std::int64_t ldm) {
  __m256 c[4][NV];
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < NV; ++j) c[i][j] = _mm256_setzero_ps();
  }
  for (std::int64_t k = 0; k < depth; ++k) {
    __m256 b[NV];
    for (int j = 0; j < NV; ++j) b[j] = _mm256_load_ps(v + 8 * j);
    for (int i = 0; i < 4; ++i) {
      const __m256 a = _mm256_broadcast_ss(u + i);
      for (int j = 0; j < NV; ++j) c[i][j] = _mm256_fmadd_ps(a, b[j], c[i][j]);
    }
    u += 4;
    v += 8 * NV;
  }
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < NV; ++j) _mm256_store_ps(m + i * ldm + 8 * j, c[i][j]);
  }
}

// Sums of the 8 lanes of each of a, b, c, d, as one 4-lane vector.
CONVBP_AVX2_INLINE __m128 lane_sums(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
  const __m256 abcd = _mm256_hadd_ps(ab, cd);
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// The weights pass: w[i][j] += sum_t d[i][t] * x[j][t] for a 3 x 4 block (3 filters, 4 input
// channels), both operands with the tiles t contiguous (rows ldd and ldx apart), as the
// transforms write them. Each accumulator holds 8 partial sums (one per lane of tiles) that
// are added across lanes once per call; `count` is a multiple of 8. `accumulate` false
// overwrites w instead (the first block of a sum).
template <bool accumulate>
CONVBP_AVX2_INLINE void dot_3x4(std::int64_t count, const float* d, std::int64_t ldd,
                                const float* x, std::int64_t ldx, float* w, std::int64_t ldw) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00;
  __m256 c12 = c00, c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  const float *d0 = d, *d1 = d + ldd, *d2 = d + 2 * ldd;
  const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
  for (std::int64_t t = 0; t < count; t += 8) {
    const __m256 a0 = _mm256_load_ps(x0 + t), a1 = _mm256_load_ps(x1 + t);
    const __m256 a2 = _mm256_load_ps(x2 + t), a3 = _mm256_load_ps(x3 + t);
    __m256 b = _mm256_load_ps(d0 + t);
    c00 = _mm256_fmadd_ps(b, a0, c00);
    c01 = _mm256_fmadd_ps(b, a1, c01);
    c02 = _mm256_fmadd_ps(b, a2, c02);
    c03 = _mm256_fmadd_ps(b, a3, c03);
    b = _mm256_load_ps(d1 + t);
    c10 = _mm256_fmadd_ps(b, a0, c10);
    c11 = _mm256_fmadd_ps(b, a1, c11);
    c12 = _mm256_fmadd_ps(b, a2, c12);
    c13 = _mm256_fmadd_ps(b, a3, c13);
    b = _mm256_load_ps(d2 + t);
    c20 = _mm256_fmadd_ps(b, a0, c20);
    c21 = _mm256_fmadd_ps(b, a1, c21);
    c22 = _mm256_fmadd_ps(b, a2, c22);
    c23 = _mm256_fmadd_ps(b, a3, c23);
  }
  const __m128 sums[3] = {lane_sums(c00, c01, c02, c03), lane_sums(c10, c11, c12, c13),
                          lane_sums(c20, c21, c22, c23)};
  for (int i = 0; i < 3; ++i) {
    float* row = w + i * ldw;
    _mm_storeu_ps(row, accumulate ? _mm_add_ps(_mm_loadu_ps(row), sums[i]) : sums[i]);
  }
}

}  // namespace convbp::winograd
