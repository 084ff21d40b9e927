// The Winograd transforms F(2x2,3x3) and F(4x4,3x3) (Lavin & Gray 2016, arXiv 1509.09308), as
// AVX2 code whose 8 vector lanes hold 8 independent tiles (or filters). The matrices are written
// out in docs/winograd.md; each 1-D transform below is one of them applied to a column of
// vectors, factored by hand so that it costs a few adds and FMAs.
//
// Every function here is compiled for AVX2+FMA by attribute, not by a file-wide -mavx2, so that
// no inline function shared with the rest of the program is ever emitted with AVX2 instructions;
// callers check the CPU first (winograd.cpp, available()).
#pragma once

#include <immintrin.h>

#include <cstddef>

#define CONVBP_AVX2 __attribute__((target("avx2,fma")))
#define CONVBP_AVX2_INLINE inline __attribute__((target("avx2,fma"), always_inline))

namespace convbp::winograd {

// A 1-D transform maps `in` values to `out` values: out[o * os] = sum_i T[o][i] * in[i * is].

// F(2,3): B^T (data tile, 4 -> 4), A^T (4 -> 2 outputs), G (3 filter taps -> 4), and the two
// transposes the weights pass uses: A (2 gradient values -> 4) and G^T (4 -> 3 filter taps).
struct F2 {
  static constexpr int m = 2, alpha = 4;

  struct InputT {  // B^T
    static constexpr int in = 4, out = 4;
    CONVBP_AVX2_INLINE static void apply(const __m256* d, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 d0 = d[0], d1 = d[is], d2 = d[2 * is], d3 = d[3 * is];
      o[0] = _mm256_sub_ps(d0, d2);
      o[os] = _mm256_add_ps(d1, d2);
      o[2 * os] = _mm256_sub_ps(d2, d1);
      o[3 * os] = _mm256_sub_ps(d1, d3);
    }
  };
  struct OutputT {  // A^T
    static constexpr int in = 4, out = 2;
    CONVBP_AVX2_INLINE static void apply(const __m256* v, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 v0 = v[0], v1 = v[is], v2 = v[2 * is], v3 = v[3 * is];
      o[0] = _mm256_add_ps(_mm256_add_ps(v0, v1), v2);
      o[os] = _mm256_sub_ps(_mm256_sub_ps(v1, v2), v3);
    }
  };
  struct Filter {  // G
    static constexpr int in = 3, out = 4;
    CONVBP_AVX2_INLINE static void apply(const __m256* g, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 half = _mm256_set1_ps(0.5f);
      const __m256 g0 = g[0], g1 = g[is], g2 = g[2 * is];
      const __m256 s = _mm256_mul_ps(half, _mm256_add_ps(g0, g2)), t = _mm256_mul_ps(half, g1);
      o[0] = g0;
      o[os] = _mm256_add_ps(s, t);
      o[2 * os] = _mm256_sub_ps(s, t);
      o[3 * os] = g2;
    }
  };
  struct GradOutput {  // A: the transpose of A^T, applied to a tile of dy
    static constexpr int in = 2, out = 4;
    CONVBP_AVX2_INLINE static void apply(const __m256* y, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 y0 = y[0], y1 = y[is];
      o[0] = y0;
      o[os] = _mm256_add_ps(y0, y1);
      o[2 * os] = _mm256_sub_ps(y0, y1);
      o[3 * os] = _mm256_sub_ps(_mm256_setzero_ps(), y1);
    }
  };
  struct FilterGradT {  // G^T: from the transform domain back to 3 filter taps
    static constexpr int in = 4, out = 3;
    CONVBP_AVX2_INLINE static void apply(const __m256* v, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 half = _mm256_set1_ps(0.5f);
      const __m256 v0 = v[0], v1 = v[is], v2 = v[2 * is], v3 = v[3 * is];
      const __m256 s = _mm256_mul_ps(half, _mm256_add_ps(v1, v2));
      o[0] = _mm256_add_ps(v0, s);
      o[os] = _mm256_mul_ps(half, _mm256_sub_ps(v1, v2));
      o[2 * os] = _mm256_add_ps(s, v3);
    }
  };
};

// F(4,3): the same five transforms with alpha = 6, interpolation points 0, +-1, +-2, infinity.
struct F4 {
  static constexpr int m = 4, alpha = 6;

  struct InputT {  // B^T
    static constexpr int in = 6, out = 6;
    CONVBP_AVX2_INLINE static void apply(const __m256* d, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f);
      const __m256 two = _mm256_set1_ps(2.0f);
      const __m256 d0 = d[0], d1 = d[is], d2 = d[2 * is], d3 = d[3 * is], d4 = d[4 * is],
                   d5 = d[5 * is];
      const __m256 a = _mm256_fnmadd_ps(four, d2, d4);  // d4 - 4 d2
      const __m256 b = _mm256_fnmadd_ps(four, d1, d3);  // d3 - 4 d1
      const __m256 c = _mm256_sub_ps(d4, d2);
      const __m256 e = _mm256_mul_ps(two, _mm256_sub_ps(d3, d1));
      o[0] = _mm256_fnmadd_ps(five, d2, _mm256_fmadd_ps(four, d0, d4));
      o[os] = _mm256_add_ps(a, b);
      o[2 * os] = _mm256_sub_ps(a, b);
      o[3 * os] = _mm256_add_ps(c, e);
      o[4 * os] = _mm256_sub_ps(c, e);
      o[5 * os] = _mm256_fnmadd_ps(five, d3, _mm256_fmadd_ps(four, d1, d5));
    }
  };
  struct OutputT {  // A^T
    static constexpr int in = 6, out = 4;
    CONVBP_AVX2_INLINE static void apply(const __m256* v, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f);
      const __m256 eight = _mm256_set1_ps(8.0f);
      const __m256 a = _mm256_add_ps(v[is], v[2 * is]), b = _mm256_sub_ps(v[is], v[2 * is]);
      const __m256 c = _mm256_add_ps(v[3 * is], v[4 * is]);
      const __m256 d = _mm256_sub_ps(v[3 * is], v[4 * is]);
      o[0] = _mm256_add_ps(_mm256_add_ps(v[0], a), c);
      o[os] = _mm256_fmadd_ps(two, d, b);
      o[2 * os] = _mm256_fmadd_ps(four, c, a);
      o[3 * os] = _mm256_add_ps(_mm256_fmadd_ps(eight, d, b), v[5 * is]);
    }
  };
  struct Filter {  // G
    static constexpr int in = 3, out = 6;
    CONVBP_AVX2_INLINE static void apply(const __m256* g, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 g0 = g[0], g1 = g[is], g2 = g[2 * is];
      const __m256 sixth = _mm256_set1_ps(1.0f / 6.0f);
      const __m256 s = _mm256_mul_ps(sixth, _mm256_add_ps(g0, g2));
      const __m256 t = _mm256_mul_ps(sixth, g1);
      // g0/24 + g2/6 and g1/12
      const __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24.0f), g0, _mm256_mul_ps(sixth, g2));
      const __m256 q = _mm256_mul_ps(_mm256_set1_ps(1.0f / 12.0f), g1);
      o[0] = _mm256_mul_ps(_mm256_set1_ps(0.25f), g0);
      o[os] = _mm256_sub_ps(_mm256_sub_ps(_mm256_setzero_ps(), s), t);
      o[2 * os] = _mm256_sub_ps(t, s);
      o[3 * os] = _mm256_add_ps(p, q);
      o[4 * os] = _mm256_sub_ps(p, q);
      o[5 * os] = g2;
    }
  };
  struct GradOutput {  // A
    static constexpr int in = 4, out = 6;
    CONVBP_AVX2_INLINE static void apply(const __m256* y, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 y0 = y[0], y1 = y[is], y2 = y[2 * is], y3 = y[3 * is];
      const __m256 e = _mm256_add_ps(y0, y2), f = _mm256_add_ps(y1, y3);
      const __m256 e2 = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), y2, y0);
      const __m256 f2 =
          _mm256_mul_ps(_mm256_set1_ps(2.0f), _mm256_fmadd_ps(_mm256_set1_ps(4.0f), y3, y1));
      o[0] = y0;
      o[os] = _mm256_add_ps(e, f);
      o[2 * os] = _mm256_sub_ps(e, f);
      o[3 * os] = _mm256_add_ps(e2, f2);
      o[4 * os] = _mm256_sub_ps(e2, f2);
      o[5 * os] = y3;
    }
  };
  struct FilterGradT {  // G^T
    static constexpr int in = 6, out = 3;
    CONVBP_AVX2_INLINE static void apply(const __m256* v, std::ptrdiff_t is, __m256* o,
                                         std::ptrdiff_t os) {
      const __m256 sixth = _mm256_set1_ps(1.0f / 6.0f);
      const __m256 a = _mm256_mul_ps(sixth, _mm256_add_ps(v[is], v[2 * is]));
      const __m256 b = _mm256_add_ps(v[3 * is], v[4 * is]);
      o[0] = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24.0f), b,
                             _mm256_fmsub_ps(_mm256_set1_ps(0.25f), v[0], a));
      o[os] = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 12.0f), _mm256_sub_ps(v[3 * is], v[4 * is]),
                              _mm256_mul_ps(sixth, _mm256_sub_ps(v[2 * is], v[is])));
      o[2 * os] = _mm256_add_ps(_mm256_fmsub_ps(sixth, b, a), v[5 * is]);
    }
  };
};

// out = T * in * T^T for a square tile: the 1-D transform T down every column, then along every
// row. `in` is [T::in][T::in] row-major, `out` [T::out][T::out].
template <typename T>
CONVBP_AVX2_INLINE void transform_2d(const __m256* in, __m256* out) {
  __m256 tmp[T::out * T::in];
  for (int j = 0; j < T::in; ++j) T::apply(in + j, T::in, tmp + j, T::in);
  for (int o = 0; o < T::out; ++o) T::apply(tmp + o * T::in, 1, out + o * T::out, 1);
}

}  // namespace convbp::winograd
