// db for NCHW dy on the project's own CUDA kernel (db_kernel.cu, built where nvcc exists:
// CONVBP_WITH_CUDA_KERNELS). db[k] = sum over n, p, q of dy[n, k, p, q], in two stages of one
// kernel, fp32 accumulation throughout:
//   stage 1: each (n, k) row of dy (p*q contiguous elements) summed by a group of `group`
//            threads (a power of two, 32 to 256; 256 / group rows per block of 256 threads)
//            -> partial[n * K + k] (fp32; K = dy's channels);
//   stage 2: one thread per k sums partial over n and writes db[k] in dy's dtype (rounded to
//            nearest even).
// On an H200, a kernel of this form read conv1's and VGG-16 conv1_2's dy at 3.4 and 4.1 TB/s
// (issue 11), where cudnnConvolutionBackwardBias read 0.34.
//
// The kernel takes one argument, DbKernelArgs, by value: tests/mock_cuda's cudaLaunchKernel
// reads it to model the kernel on the host, computing only the rows the launched grid covers
// (so that a grid too small gives a wrong db there too).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace convbp::cudnn {

struct DbKernelArgs {
  int stage;                // 1 or 2 (above)
  int dtype;                // convbp::DType's value: 0 f32, 1 bf16, 2 f16
  int group;                // stage 1: threads per row
  int n, k;                 // dy's n and k
  std::int64_t row_length;  // p * q
  const void* dy;           // [n, k, p, q] in dtype
  float* partial;           // [n, k]
  void* db;                 // [k] in dtype
};

inline constexpr int kDbBlock = 256;  // threads per block, both stages

// Threads per row in stage 1: about one per 8 elements, within [32, 256], a power of two (a
// whole number of warps, a whole number of rows per block).
inline int db_group(std::int64_t row_length) {
  int group = 32;
  while (group < kDbBlock && std::int64_t(group) * 8 < row_length) group *= 2;
  return group;
}

// Launches both stages on `stream` (cudaLaunchKernel; no synchronisation). `partial` holds
// n*k floats. Returns the first launch error.
cudaError_t enqueue_db_kernel(const void* dy, float* partial, void* db, int dtype, int n, int k,
                              std::int64_t row_length, cudaStream_t stream);

}  // namespace convbp::cudnn
