// The db reduction kernels (db_kernel.h): nvcc only, built where it exists.
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

// NCHW. Every thread of the block reaches the __syncthreads(): rows past the end only add
// nothing.
template <int D>
__global__ void __launch_bounds__(kDbBlock) db_nchw_kernel(DbKernelArgs a) {
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

// NHWC (db_kernel.h). Stage 1: block b sums chunk b / tiles of the rows over tile b % tiles of
// the channels; every thread reaches the __syncthreads(). Stage 2: warp w of block b sums
// channel b * 8 + w's chunks; every lane reaches the shuffles.
template <int D>
__global__ void __launch_bounds__(kDbBlock) db_nhwc_kernel(DbKernelArgs a) {
  const std::int64_t k = a.k;
  if (a.stage == 2) {
    const std::int64_t c = std::int64_t(blockIdx.x) * kDbNhwcChannelsPerBlock + threadIdx.x / 32;
    float sum = 0.0f;
    if (c < k) {
      const float* row = a.partial + c * a.chunks;
      for (int i = threadIdx.x % 32; i < a.chunks; i += 32) sum += row[i];
    }
    sum = warp_sum(sum);
    if (threadIdx.x % 32 == 0 && c < k) store<D>(a.db, c, sum);
    return;
  }
  __shared__ float lane_sums[kDbBlock];
  // db_nhwc_grid()'s width, lanes and tiles (a host function).
  const int width = a.k < kDbBlock ? a.k : kDbBlock;
  const int lanes = kDbBlock / width;
  const int tiles = (a.k + width - 1) / width;
  const int tile = blockIdx.x % tiles;
  const std::int64_t chunk = blockIdx.x / tiles;
  if (chunk >= a.chunks) return;  // a grid larger than chunks x tiles (the whole block leaves)
  const int t = threadIdx.x;
  const std::int64_t c = std::int64_t(tile) * width + t % width;
  const int lane = t / width;
  const std::int64_t rows = std::int64_t(a.n) * a.row_length;
  const std::int64_t begin = chunk * a.chunk_rows;
  const std::int64_t end = begin + a.chunk_rows < rows ? begin + a.chunk_rows : rows;
  const std::int64_t step = lanes;
  float sums[8] = {};
  if (lane < lanes && c < k) {
    std::int64_t r = begin + lane;
    for (; r + 7 * step < end; r += 8 * step) {
#pragma unroll
      for (int u = 0; u < 8; ++u) sums[u] += load<D>(a.dy, (r + u * step) * k + c);
    }
#pragma unroll 4
    for (int u = 0; r < end; r += step, ++u) sums[u & 3] += load<D>(a.dy, r * k + c);
  }
  float total = 0.0f;
#pragma unroll
  for (int u = 0; u < 8; ++u) total += sums[u];
  lane_sums[t] = total;
  __syncthreads();
  if (t < width && c < k) {
    float sum = 0.0f;
    for (int l = 0; l < lanes; ++l) sum += lane_sums[l * width + t];
    a.partial[c * a.chunks + chunk] = sum;
  }
}

// The kernel for a dtype and layout (DbKernelArgs's values).
const void* kernel_for(int dtype, int layout) {
  if (layout == 0) {
    return dtype == 1   ? reinterpret_cast<const void*>(&db_nchw_kernel<1>)
           : dtype == 2 ? reinterpret_cast<const void*>(&db_nchw_kernel<2>)
                        : reinterpret_cast<const void*>(&db_nchw_kernel<0>);
  }
  return dtype == 1   ? reinterpret_cast<const void*>(&db_nhwc_kernel<1>)
         : dtype == 2 ? reinterpret_cast<const void*>(&db_nhwc_kernel<2>)
                      : reinterpret_cast<const void*>(&db_nhwc_kernel<0>);
}

}  // namespace

int db_nhwc_wave(int dtype) {
  int device = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel_for(dtype, 1), kDbBlock, 0) !=
          cudaSuccess) {
    cudaGetLastError();  // not a sticky error: cleared
    return 0;
  }
  return sms > 0 && per_sm > 0 ? sms * per_sm : 0;
}

cudaError_t enqueue_db_kernel(const void* dy, float* partial, void* db, int dtype, int layout,
                              int n, int k, std::int64_t row_length, int wave,
                              cudaStream_t stream) {
  const void* kernel = kernel_for(dtype, layout);
  DbKernelArgs a{1, dtype, layout, 0, n, k, row_length, 0, 0, dy, partial, db};
  void* args[] = {&a};
  const dim3 block(kDbBlock);
  dim3 grid1, grid2;
  if (layout == 0) {
    a.group = db_group(row_length);
    const std::int64_t rows_per_block = kDbBlock / a.group;
    const std::int64_t rows = std::int64_t(n) * k;
    grid1 = dim3(unsigned((rows + rows_per_block - 1) / rows_per_block));
    grid2 = dim3(unsigned((k + kDbBlock - 1) / kDbBlock));
  } else {
    const DbNhwcGrid g = db_nhwc_grid(std::int64_t(n) * row_length, k, wave);
    a.chunks = g.chunks;
    a.chunk_rows = g.chunk_rows;
    grid1 = dim3(unsigned(g.blocks()));
    grid2 = dim3(unsigned((k + kDbNhwcChannelsPerBlock - 1) / kDbNhwcChannelsPerBlock));
  }
  if (cudaError_t e = cudaLaunchKernel(kernel, grid1, block, args, 0, stream)) {
    return e;
  }
  a.stage = 2;
  return cudaLaunchKernel(kernel, grid2, block, args, 0, stream);
}

}  // namespace convbp::cudnn
