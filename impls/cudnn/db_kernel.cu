// The db reduction kernel (db_kernel.h): nvcc only, built where it exists.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "db_kernel.h"

namespace convbp::cudnn {

namespace {

// The element types by DbKernelArgs::dtype, resolved at compile time (no branch per element).
template <int D>
__device__ float load(const void* p, std::int64_t i) {
  if constexpr (D == 1) {
    return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  } else if constexpr (D == 2) {
    return __half2float(static_cast<const __half*>(p)[i]);
  } else {
    return static_cast<const float*>(p)[i];
  }
}

template <int D>
__device__ void store(void* p, std::int64_t i, float v) {
  if constexpr (D == 1) {
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  } else if constexpr (D == 2) {
    static_cast<__half*>(p)[i] = __float2half_rn(v);
  } else {
    static_cast<float*>(p)[i] = v;
  }
}

__device__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Every thread of the block reaches the __syncthreads(): rows past the end only add nothing.
template <int D>
__global__ void __launch_bounds__(kDbBlock) db_kernel(DbKernelArgs a) {
  if (a.stage == 2) {
    const int k = blockIdx.x * kDbBlock + threadIdx.x;
    if (k >= a.k) return;
    float sum = 0.0f;
#pragma unroll 8
    for (int n = 0; n < a.n; ++n) sum += a.partial[std::int64_t(n) * a.k + k];
    store<D>(a.db, k, sum);
    return;
  }
  __shared__ float warp_sums[kDbBlock / 32];
  const int lane = threadIdx.x % a.group;
  const std::int64_t rows = std::int64_t(a.n) * a.k;
  const std::int64_t row = std::int64_t(blockIdx.x) * (kDbBlock / a.group) + threadIdx.x / a.group;
  const std::int64_t len = a.row_length;
  const std::int64_t step = a.group;
  // Eight independent sums, so that eight loads per thread are in flight (the group is sized
  // for about eight elements per thread).
  float sums[8] = {};
  if (row < rows) {
    const std::int64_t base = row * len;
    std::int64_t i = lane;
    for (; i + 7 * step < len; i += 8 * step) {
#pragma unroll
      for (int u = 0; u < 8; ++u) sums[u] += load<D>(a.dy, base + i + u * step);
    }
#pragma unroll 4
    for (int u = 0; i < len; i += step, ++u) sums[u & 3] += load<D>(a.dy, base + i);
  }
  float total = 0.0f;
#pragma unroll
  for (int u = 0; u < 8; ++u) total += sums[u];
  const float v = warp_sum(total);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  if (lane == 0 && row < rows) {
    float sum = 0.0f;
    for (int w = 0; w < a.group / 32; ++w) sum += warp_sums[threadIdx.x / 32 + w];
    a.partial[row] = sum;
  }
}

}  // namespace

cudaError_t enqueue_db_kernel(const void* dy, float* partial, void* db, int dtype, int n, int k,
                              std::int64_t row_length, cudaStream_t stream) {
  const void* kernel = dtype == 1   ? reinterpret_cast<const void*>(&db_kernel<1>)
                       : dtype == 2 ? reinterpret_cast<const void*>(&db_kernel<2>)
                                    : reinterpret_cast<const void*>(&db_kernel<0>);
  DbKernelArgs a{1, dtype, db_group(row_length), n, k, row_length, dy, partial, db};
  void* args[] = {&a};
  const std::int64_t rows_per_block = kDbBlock / a.group;
  const std::int64_t rows = std::int64_t(n) * k;
  const dim3 block(kDbBlock);
  const dim3 grid1(unsigned((rows + rows_per_block - 1) / rows_per_block));
  if (cudaError_t e = cudaLaunchKernel(kernel, grid1, block, args, 0, stream)) {
    return e;
  }
  a.stage = 2;
  const dim3 grid2(unsigned((k + kDbBlock - 1) / kDbBlock));
  return cudaLaunchKernel(kernel, grid2, block, args, 0, stream);
}

}  // namespace convbp::cudnn
