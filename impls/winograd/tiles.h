// Tiles: where the tiles of a Winograd pass sit in NCHW planes, and AVX2 loads and stores that
// move 8 of them at once between the planes and vectors whose lanes are the 8 tiles.
//
// Tiles are numbered over (image, tile row, tile column), so 8 consecutive tiles may lie in
// different rows or images; each lane keeps its own offset and a mask of the elements that lie
// inside the plane. Masked-off elements read as 0 (the zero padding of the convolution) and are
// never written, and a masked load never touches the memory it skips, so a tile that overhangs
// the plane needs no copy.
#pragma once

#include <algorithm>
#include <cstdint>

#include "transforms.h"

namespace convbp::winograd {

// The grid of m x m tiles laid over every image's `rows x cols` output plane.
struct TileGrid {
  std::int64_t images = 0, rows = 0, cols = 0, m = 0;
  std::int64_t tiles_h() const { return (rows + m - 1) / m; }
  std::int64_t tiles_w() const { return (cols + m - 1) / m; }
  std::int64_t per_image() const { return tiles_h() * tiles_w(); }
  std::int64_t total() const { return images * per_image(); }
};

// A window of each tile in a stack of planes: the window of tile (row t_h, column t_w) starts
// at plane position (t_h * m + shift_h, t_w * m + shift_w); planes are height x width and an
// image holds `channels` of them.
struct Window {
  std::int64_t shift_h = 0, shift_w = 0;
  std::int64_t height = 0, width = 0, channels = 0;
  std::int64_t plane() const { return height * width; }
};

// 8 tiles' windows of Rows x Cols elements in one stack of planes (one tile per lane).
template <int Rows, int Cols>
struct TileLanes {
  static_assert(Cols <= 8);
  // Offset of each window's first element from channel 0 of image 0; out-of-plane corners give
  // offsets that are only ever used with their elements masked off.
  std::int64_t offset[8];
  // [row][lane][column]: -1 where the element lies inside the plane, 0 outside.
  alignas(32) std::int32_t mask[Rows][8][8];
  bool full[8];  // the whole window lies inside the plane

  // Lanes for tiles first, first+1, ... of `grid`; tiles at or past grid.total() are all masked.
  void set(const TileGrid& grid, std::int64_t first, const Window& win) {
    for (int l = 0; l < 8; ++l) {
      const std::int64_t tile = first + l;
      std::int64_t h0 = 0, w0 = 0, image = 0;
      const bool real = tile < grid.total();
      if (real) {
        image = tile / grid.per_image();
        const std::int64_t in_image = tile % grid.per_image();
        h0 = (in_image / grid.tiles_w()) * grid.m + win.shift_h;
        w0 = (in_image % grid.tiles_w()) * grid.m + win.shift_w;
      }
      offset[l] = image * win.channels * win.plane() + h0 * win.width + w0;
      full[l] = real && h0 >= 0 && h0 + Rows <= win.height && w0 >= 0 && w0 + Cols <= win.width;
      for (int i = 0; i < Rows; ++i) {
        const bool row_in = real && h0 + i >= 0 && h0 + i < win.height;
        for (int j = 0; j < 8; ++j) {
          mask[i][l][j] = (row_in && j < Cols && w0 + j >= 0 && w0 + j < win.width) ? -1 : 0;
        }
      }
    }
  }
};

// base + offset, computed on integers: a masked lane's window may start before the tensor (or the
// next channel's plane lie past it), which a masked access or a prefetch tolerates but pointer
// arithmetic does not.
template <typename T>
inline T* element(T* base, std::int64_t offset) {
  return reinterpret_cast<T*>(reinterpret_cast<std::uintptr_t>(base) +
                              offset * std::int64_t(sizeof(T)));
}

// In-place transpose of an 8x8 block held in 8 vectors.
CONVBP_AVX2_INLINE void transpose8x8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// A 4x4 transpose inside each 128-bit half of 4 vectors: with a[l] = [row l | row l+4] of an
// 8x4 block, it yields a[j] = [column j of rows 0..3 | column j of rows 4..7], and back.
CONVBP_AVX2_INLINE void transpose4x4_halves(__m256* a) {
  const __m256 t0 = _mm256_unpacklo_ps(a[0], a[1]), t1 = _mm256_unpackhi_ps(a[0], a[1]);
  const __m256 t2 = _mm256_unpacklo_ps(a[2], a[3]), t3 = _mm256_unpackhi_ps(a[2], a[3]);
  a[0] = _mm256_shuffle_ps(t0, t2, 0x44);
  a[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
  a[2] = _mm256_shuffle_ps(t1, t3, 0x44);
  a[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}

// Loads the windows of 8 tiles from the planes starting at `base` (channel 0 of image 0 plus
// the channel's offset): out[i * Cols + j] holds element (i, j) of every lane's window.
template <int Rows, int Cols>
CONVBP_AVX2_INLINE void load_tiles(const float* base, std::int64_t width,
                                   const TileLanes<Rows, Cols>& lanes, __m256* out) {
  for (int i = 0; i < Rows; ++i) {
    if constexpr (Cols > 4) {
      __m256 r[8];
      for (int l = 0; l < 8; ++l) {
        const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes.mask[i][l]));
        r[l] = _mm256_maskload_ps(element(base, lanes.offset[l] + i * width), mask);
      }
      transpose8x8(r);
      for (int j = 0; j < Cols; ++j) out[i * Cols + j] = r[j];
    } else {
      __m128 r[8];
      for (int l = 0; l < 8; ++l) {
        const __m128i mask = _mm_load_si128(reinterpret_cast<const __m128i*>(lanes.mask[i][l]));
        r[l] = _mm_maskload_ps(element(base, lanes.offset[l] + i * width), mask);
      }
      __m256 a[4];
      for (int l = 0; l < 4; ++l) a[l] = _mm256_set_m128(r[l + 4], r[l]);
      transpose4x4_halves(a);
      for (int j = 0; j < Cols; ++j) out[i * Cols + j] = a[j];
    }
  }
}

// Prefetches the windows of 8 tiles in the plane `ahead` floats after `base` (the next
// channel): the lines at the first, middle and last lane of each row, which cover the row when
// the 8 tiles sit side by side. Consecutive channels are planes far apart, too short a stream
// for the hardware prefetcher; without this a pass over a large image waits on memory for more
// than half of its time (docs/winograd.md).
template <int Rows, int Cols, bool write = false>
CONVBP_AVX2_INLINE void prefetch_tiles(const float* base, std::int64_t ahead, std::int64_t width,
                                       const TileLanes<Rows, Cols>& lanes) {
  for (int i = 0; i < Rows; ++i) {
    const std::int64_t row = ahead + i * width;
    __builtin_prefetch(element(base, lanes.offset[0] + row), write, 3);
    __builtin_prefetch(element(base, lanes.offset[4] + row), write, 3);
    __builtin_prefetch(element(base, lanes.offset[7] + row + Cols - 1), write, 3);
  }
}

// Stores M x M output tiles (y[i * M + j] = element (i, j) of every lane's tile) into the
// planes at `base`; elements outside the plane are skipped.
template <int M>
CONVBP_AVX2_INLINE void store_tiles(float* base, std::int64_t width, const TileLanes<M, M>& lanes,
                                    const __m256* y) {
  static_assert(M == 2 || M == 4);
  for (int i = 0; i < M; ++i) {
    __m256 a[4];
    for (int j = 0; j < 4; ++j) a[j] = j < M ? y[i * M + j] : _mm256_setzero_ps();
    transpose4x4_halves(a);  // a[l] = [row i of tile l | row i of tile l + 4]
    for (int l = 0; l < 8; ++l) {
      const __m128 row = l < 4 ? _mm256_castps256_ps128(a[l]) : _mm256_extractf128_ps(a[l - 4], 1);
      float* dst = element(base, lanes.offset[l] + i * width);
      if (lanes.full[l]) {
        if constexpr (M == 4) {
          _mm_storeu_ps(dst, row);
        } else {
          _mm_storel_pi(reinterpret_cast<__m64*>(dst), row);
        }
      } else {
        const __m128i mask = _mm_load_si128(reinterpret_cast<const __m128i*>(lanes.mask[i][l]));
        _mm_maskstore_ps(dst, mask, row);
      }
    }
  }
}

}  // namespace convbp::winograd
