// db on the project's own CUDA kernels (db_kernel.cu, built where nvcc exists:
// CONVBP_WITH_CUDA_KERNELS): db[k] = sum over n, p, q of dy, in two stages, fp32 accumulation
// throughout, in either layout.
//
// NCHW (dy as n*k rows of p*q contiguous elements):
//   stage 1: each (n, k) row summed by a group of `group` threads (a power of two, 32 to 256;
//            256 / group rows per block of 256 threads) -> partial[n * K + k] (fp32);
//   stage 2: one thread per k sums partial over n and writes db[k] in dy's dtype (rounded to
//            nearest even).
// On an H200, a kernel of this form read conv1's and VGG-16 conv1_2's dy at 3.4 and 4.1 TB/s
// (issue 11), where cudnnConvolutionBackwardBias read 0.34.
//
// NHWC (dy as R = n*p*q rows of K contiguous channels; db sums its columns):
//   stage 1: the rows split into `chunks` chunks of `chunk_rows` rows, the channels into tiles
//            of at most 256; one block per (chunk, tile). Within a block, `lanes` = 256 / width
//            threads share each of the tile's `width` channels (width = K where K <= 256, so
//            that every load of the block reads lanes * K contiguous elements; else 256 and one
//            lane): each thread sums its channel over every lanes-th row of the chunk, the
//            lanes are added in shared memory -> partial[k * chunks + chunk] (fp32);
//   stage 2: one warp per k sums partial's contiguous row for k and writes db[k] in dy's
//            dtype, 8 channels per block.
// The chunks are sized so that stage 1 is one wave: as many blocks as the GPU holds at once
// (db_nhwc_wave(): SMs x the kernel's blocks per SM, 792 for f32 and 1056 for bf16 and f16 on
// an H100 or H200 SXM's 132 SMs at the 40 and 32 registers nvcc 13 gives them; 1024 where the
// runtime does not say), each with the same rows, at least 16 per thread where there are rows
// enough. A bandwidth-bound kernel with equal blocks in one wave keeps every SM reading to the
// end, where a wave and a part would leave most SMs idle in the part.
//
// Each kernel takes one argument, DbKernelArgs, by value: tests/mock_cuda's cudaLaunchKernel
// reads it to model the kernels on the host, computing only what the launched grid covers (so
// that a grid too small gives a wrong db there too).
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

namespace convbp::cudnn {

struct DbKernelArgs {
  int stage;                // 1 or 2 (above)
  int dtype;                // convbp::DType's value: 0 f32, 1 bf16, 2 f16
  int layout;               // convbp::Layout's value: 0 NCHW, 1 NHWC
  int group;                // NCHW stage 1: threads per row
  int n, k;                 // dy's n and k
  std::int64_t row_length;  // p * q
  int chunks;               // NHWC: row chunks of stage 1 (partial is [k, chunks])
  std::int64_t chunk_rows;  // NHWC: rows (n, p, q positions) per chunk, the last one maybe fewer
  const void* dy;           // [n, k, p, q] or [n, p, q, k] in dtype
  float* partial;           // NCHW [n, k]; NHWC [k, chunks]
  void* db;                 // [k] in dtype
};

inline constexpr int kDbBlock = 256;  // threads per block, both stages, both layouts

// NCHW: threads per row in stage 1: about one per 8 elements, within [32, 256], a power of two
// (a whole number of warps, a whole number of rows per block).
inline int db_group(std::int64_t row_length) {
  int group = 32;
  while (group < kDbBlock && std::int64_t(group) * 8 < row_length) group *= 2;
  return group;
}

// NHWC: the shape of stage 1's grid for `rows` = n*p*q rows of k channels and a wave of `wave`
// blocks (db_nhwc_wave(); 0 or less: kDbNhwcBlocks), above.
struct DbNhwcGrid {
  int width;                // channels per tile: k up to 256, else 256
  int lanes;                // threads per channel in a block: 256 / width
  int tiles;                // tiles of channels: ceil(k / width)
  int chunks;               // chunks of rows
  std::int64_t chunk_rows;  // rows per chunk
  std::int64_t blocks() const { return std::int64_t(chunks) * tiles; }
};
inline constexpr int kDbNhwcBlocks = 1024;     // a wave where the device does not say
inline constexpr int kDbNhwcRowsPerLane = 16;  // rows a lane sums at least
inline constexpr int kDbNhwcChannelsPerBlock = kDbBlock / 32;  // stage 2: a warp per channel
inline DbNhwcGrid db_nhwc_grid(std::int64_t rows, int k, int wave) {
  DbNhwcGrid g{};
  g.width = k < kDbBlock ? k : kDbBlock;
  g.lanes = kDbBlock / g.width;
  g.tiles = int((std::int64_t(k) + g.width - 1) / g.width);
  const std::int64_t min_rows = std::int64_t(g.lanes) * kDbNhwcRowsPerLane;
  const int blocks = wave > 0 ? wave : kDbNhwcBlocks;
  const std::int64_t chunks = std::max<std::int64_t>(
      1, std::min<std::int64_t>(rows / min_rows, std::max(1, blocks / g.tiles)));
  g.chunk_rows = (rows + chunks - 1) / chunks;
  g.chunks = int((rows + g.chunk_rows - 1) / g.chunk_rows);  // none empty
  return g;
}
// The floats `partial` holds: NCHW n*k, NHWC k*chunks.
inline std::int64_t db_partial_floats(int layout, int n, int k, std::int64_t row_length, int wave) {
  return layout == 0 ? std::int64_t(n) * k
                     : std::int64_t(k) * db_nhwc_grid(std::int64_t(n) * row_length, k, wave).chunks;
}

// The NHWC kernel's blocks that the current device runs at once in `dtype` (its SMs times the
// blocks of 256 threads each holds, cudaOccupancyMaxActiveBlocksPerMultiprocessor), or 0 where
// the runtime does not say.
int db_nhwc_wave(int dtype);

// Launches both stages on `stream` (cudaLaunchKernel; no synchronisation). `partial` holds
// db_partial_floats(...) floats, for the same `wave` (NHWC only). Returns the first launch
// error.
cudaError_t enqueue_db_kernel(const void* dy, float* partial, void* db, int dtype, int layout,
                              int n, int k, std::int64_t row_length, int wave, cudaStream_t stream);

}  // namespace convbp::cudnn
