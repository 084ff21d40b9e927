// The project's db kernels (impls/cudnn/db_kernel.cu), their own source compiled as C++, run on
// the host under cuda_emulation.h's model of CUDA's threads, blocks, barriers and warp shuffles.
// It proves what the host model of cuDNN (tests/mock_cuda) cannot, since that model reimplements
// the kernels: that each kernel as written sums every element of dy once, in both layouts,
// combines its threads and warps right for every group size and tile, keeps every thread on the
// same barriers, and reads and
// writes nothing outside dy, partial and db (each buffer sits between inaccessible pages, and dy
// is read-only). Speed and the GPU's memory model need a GPU (scripts/gpu_check.sh).
//
// __shared__ first, before any CUDA header: a kernel's shared array is one per kernel here.
#define __shared__ static
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_emulation.h"
#include "cudnn/db_kernel.h"
#include "dtype.h"
#include "tolerance.h"

namespace {
cudaError_t launch_on_host(const void* kernel, dim3 grid, dim3 block, void** args,
                           std::size_t shared_bytes, cudaStream_t stream);
}  // namespace

// The names the kernel's source uses, mapped onto the emulation, for that source only.
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#define threadIdx (::cuda_emulation::current().thread)
#define blockIdx (::cuda_emulation::current().block)
#define blockDim (::cuda_emulation::current().block_dim)
#define gridDim (::cuda_emulation::current().grid_dim)
#define __syncthreads() ::cuda_emulation::sync_threads(__LINE__)
#define __shfl_down_sync(...) ::cuda_emulation::shfl_down_sync(__VA_ARGS__)
#define cudaLaunchKernel launch_on_host
#include "cudnn/db_kernel.cu"
#undef cudaLaunchKernel
#undef __shfl_down_sync
#undef __syncthreads
#undef gridDim
#undef blockDim
#undef blockIdx
#undef threadIdx

namespace {

using convbp::DType;
using convbp::cudnn::DbKernelArgs;

// The kernel takes its one argument, DbKernelArgs, by value (db_kernel.h).
cudaError_t launch_on_host(const void* kernel, dim3 grid, dim3 block, void** args,
                           std::size_t shared_bytes, cudaStream_t /*stream*/) {
  if (shared_bytes != 0) return cudaErrorInvalidValue;  // the kernel declares its shared memory
  const auto f = reinterpret_cast<void (*)(DbKernelArgs)>(const_cast<void*>(kernel));
  const DbKernelArgs a = *static_cast<const DbKernelArgs*>(args[0]);
  return cuda_emulation::launch(grid, block, [&] { f(a); });
}

// Which end of a GuardedBuffer touches its inaccessible page.
enum class Edge { end, start };

// `bytes` of memory between two inaccessible pages, placed against one of them: with Edge::end
// a read or write past the end is a SIGSEGV, with Edge::start one before the start, in any
// build (the other side has the rest of a page of slack).
class GuardedBuffer {
 public:
  GuardedBuffer(std::size_t bytes, Edge edge) {
    const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
    data_pages_ = (bytes + page - 1) / page * page;
    map_bytes_ = data_pages_ + 2 * page;
    void* m = mmap(nullptr, map_bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("mmap failed");
    map_ = static_cast<unsigned char*>(m);
    if (mprotect(map_ + page, data_pages_, PROT_READ | PROT_WRITE) != 0) {
      throw std::runtime_error("mprotect failed");
    }
    data_ = map_ + page + (edge == Edge::end ? data_pages_ - bytes : 0);
  }
  ~GuardedBuffer() { munmap(map_, map_bytes_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  void* data() { return data_; }
  // Makes the data read-only, so that a write to it is a SIGSEGV too.
  void read_only() {
    const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
    if (mprotect(map_ + page, data_pages_, PROT_READ) != 0) {
      throw std::runtime_error("mprotect failed");
    }
  }

 private:
  std::size_t data_pages_ = 0, map_bytes_ = 0;
  unsigned char* map_ = nullptr;
  unsigned char* data_ = nullptr;
};

using convbp::Layout;

// wave: NHWC, the blocks stage 1 is sized for (db_nhwc_grid(); 0: kDbNhwcBlocks, as where the
// device does not say).
struct Shape {
  int n, k;
  std::int64_t pq;
  int wave = 0;
};

std::string describe(const Shape& s, DType dtype, Layout layout, std::uint64_t seed,
                     Edge edge = Edge::end) {
  std::ostringstream o;
  o << "dy [n " << s.n << ", k " << s.k << ", p*q " << s.pq << "] " << convbp::to_string(dtype)
    << " " << convbp::to_string(layout) << " (";
  if (layout == Layout::nchw) {
    o << "threads per row " << convbp::cudnn::db_group(s.pq);
  } else {
    const auto g = convbp::cudnn::db_nhwc_grid(s.n * s.pq, s.k, s.wave);
    o << g.chunks << " chunks of " << g.chunk_rows << " rows, " << g.tiles << " tiles of "
      << g.width << " channels, " << g.lanes << " threads per channel, wave " << s.wave;
  }
  o << "), seed " << seed << ", buffers against their " << (edge == Edge::end ? "end" : "start")
    << " guard page";
  return o.str();
}

// NCHW: row lengths from 1x1 to conv1's 112x112, for every group size (32 to 256 threads per
// row), with and without a tail after the kernel's eight-way unrolled loop, row counts that
// leave a block part empty, n past stage 2's unroll by 8, and k over one block of stage 2.
// NHWC: k of 1 to 300, so that a block's 256 threads give 256 to 1 threads to a channel, some
// of them none (k 3, 5, 37, 96), one tile of channels exactly (256) and a second tile with one
// channel (257) or more (300); one chunk of rows, and many with a short last one; the cap on
// stage 1's blocks (a wave) reached in a tile of 300 channels and in one of 64 (conv1's and
// VGG-16's k: 1016 chunks of 65 rows, the last of 25), and small waves, so that each thread
// runs the eight-way loop many times (k 64 and 5) and a wave that the tiles do not divide
// leaves blocks out (k 257, wave 5).
const Shape kShapes[] = {{1, 1, 1},      {3, 5, 7},        {2, 3, 49},      {3, 37, 100},
                         {2, 3, 257},    {2, 5, 1000},     {2, 3, 2051},    {1, 2, 12544},
                         {17, 3, 9},     {2, 300, 4},      {5, 7, 4096},    {2, 64, 3136},
                         {1, 96, 500},   {1, 256, 300},    {2, 257, 40},    {1, 300, 8200},
                         {1, 64, 66000}, {2, 64, 3136, 6}, {1, 5, 4000, 3}, {3, 257, 50, 5}};
const DType kDtypes[] = {DType::f32, DType::bf16, DType::f16};
const Layout kLayouts[] = {Layout::nchw, Layout::nhwc};

enum class Values { integers, reals };

// Runs the kernel on dy filled with `values` in `dtype`, and checks partial and db against sums
// in double:
//   integers in [-3, 3]: every partial sum is an integer below 2^24, exact in fp32 whatever the
//     order, so partial must equal its sum exactly, and db the exact sum rounded to its dtype:
//     an element left out or counted twice changes them;
//   reals in [-1, 1): within the bound of fp32 recursive summation, (terms - 1) * 2^-24 * the
//     sum of |terms|, plus db's rounding to its dtype.
// partial: NCHW [n, k], each (n, k) row's sum; NHWC [k, chunks], each channel's sum over a
// chunk of rows.
void check_kernel(const Shape& s, DType dtype, Layout layout, Values values, std::uint64_t seed,
                  Edge edge = Edge::end) {
  SCOPED_TRACE(describe(s, dtype, layout, seed, edge));
  const std::size_t k = std::size_t(s.k);
  const std::size_t elements = std::size_t(s.n) * k * std::size_t(s.pq);
  const auto g = convbp::cudnn::db_nhwc_grid(s.n * s.pq, s.k, s.wave);
  const std::size_t partials =
      std::size_t(convbp::cudnn::db_partial_floats(int(layout), s.n, s.k, s.pq, s.wave));
  // Which partial an element adds to, how many elements each partial sums at most, and which
  // channel a partial belongs to.
  const auto partial_of = [&](std::size_t i) {
    if (layout == Layout::nchw) return i / std::size_t(s.pq);
    return (i % k) * std::size_t(g.chunks) + (i / k) / std::size_t(g.chunk_rows);
  };
  const std::size_t terms = layout == Layout::nchw ? std::size_t(s.pq) : std::size_t(g.chunk_rows);
  const auto channel_of = [&](std::size_t partial) {
    return layout == Layout::nchw ? partial % k : partial / std::size_t(g.chunks);
  };
  const std::size_t esize = convbp::dtype_size(dtype);
  GuardedBuffer dy(elements * esize, edge), partial(partials * sizeof(float), edge),
      db(k * esize, edge);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> integer(-3, 3);
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  std::vector<double> partial_sum(partials, 0.0), partial_abs(partials, 0.0);
  for (std::size_t i = 0; i < elements; ++i) {
    const double v = values == Values::integers ? integer(rng) : real(rng);
    convbp::store_from_double(dtype, dy.data(), i, v);
    const double stored = convbp::load_as_double(dtype, dy.data(), i);
    partial_sum[partial_of(i)] += stored;
    partial_abs[partial_of(i)] += std::fabs(stored);
  }
  dy.read_only();
  std::memset(partial.data(), 0xff, partials * sizeof(float));  // NaN
  for (std::size_t c = 0; c < k; ++c) convbp::store_from_double(dtype, db.data(), c, NAN);

  cuda_emulation::launches().clear();
  ASSERT_EQ(
      convbp::cudnn::enqueue_db_kernel(dy.data(), static_cast<float*>(partial.data()), db.data(),
                                       int(dtype), int(layout), s.n, s.k, s.pq, s.wave, nullptr),
      cudaSuccess);
  ASSERT_EQ(cuda_emulation::launches().size(), 2u) << "two stages, two launches";

  const double u32 = std::ldexp(1.0, -24);
  const double u = convbp::unit_roundoff(dtype);
  const auto* part = static_cast<const float*>(partial.data());
  for (std::size_t i = 0; i < partials; ++i) {
    const double bound =
        values == Values::integers ? 0.0 : double(terms - 1) * u32 * partial_abs[i];
    ASSERT_LE(std::fabs(part[i] - partial_sum[i]), bound)
        << "partial[" << i << "] (k " << channel_of(i) << ") is " << part[i] << ", its sum is "
        << partial_sum[i];
  }
  std::vector<double> sum(k, 0.0), abs_sum(k, 0.0);
  for (std::size_t i = 0; i < partials; ++i) {
    sum[channel_of(i)] += partial_sum[i];
    abs_sum[channel_of(i)] += partial_abs[i];
  }
  const double depth = double(s.pq) * s.n - 1;  // the terms of db[k]
  for (std::size_t c = 0; c < k; ++c) {
    const double got = convbp::load_as_double(dtype, db.data(), c);
    if (values == Values::integers) {
      ASSERT_EQ(got, convbp::round_to(dtype, sum[c])) << "db[" << c << "]";
    } else {
      const double fp32 = depth * u32 * abs_sum[c];
      ASSERT_LE(std::fabs(got - sum[c]), fp32 + u * (std::fabs(sum[c]) + fp32))
          << "db[" << c << "] is " << got << ", the sum is " << sum[c];
    }
  }
}

// Each shape twice: with every buffer against the guard page after it, then before it.
TEST(DbKernelOnHost, SumsEveryElementOnceInEveryDtypeAndLayout) {
  std::uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    for (Layout layout : kLayouts) {
      for (DType dtype : kDtypes) {
        for (Edge edge : {Edge::end, Edge::start}) {
          check_kernel(s, dtype, layout, Values::integers, seed++, edge);
        }
      }
    }
  }
}

TEST(DbKernelOnHost, StaysWithinFp32SummationsBoundOnRealValues) {
  std::uint64_t seed = 1000;
  for (const Shape& s : kShapes) {
    for (Layout layout : kLayouts) {
      for (DType dtype : kDtypes) check_kernel(s, dtype, layout, Values::reals, seed++);
    }
  }
}

// The grid of each stage, neither with a block that has nothing to do:
//   NCHW: stage 1 one group of db_group(p*q) threads per (n, k) row, stage 2 one thread per k,
//         in blocks of kDbBlock threads;
//   NHWC: stage 1 one block per (chunk, tile), every chunk holding rows, no more blocks than a
//         wave (unless the tiles alone are more), at least 16 rows per thread; stage 2 one warp
//         per k, kDbNhwcChannelsPerBlock per block.
TEST(DbKernelOnHost, LaunchesNoBlockWithoutWork) {
  using convbp::cudnn::kDbBlock;
  using convbp::cudnn::kDbNhwcChannelsPerBlock;
  for (const Shape& s : kShapes) {
    for (Layout layout : kLayouts) {
      SCOPED_TRACE(describe(s, DType::f32, layout, 0));
      check_kernel(s, DType::f32, layout, Values::integers, 0);
      const auto& l = cuda_emulation::launches();
      ASSERT_EQ(l.size(), 2u);
      EXPECT_EQ(l[0].block.x, unsigned(kDbBlock));
      EXPECT_EQ(l[1].block.x, unsigned(kDbBlock));
      if (layout == Layout::nchw) {
        const unsigned rows_per_block = unsigned(kDbBlock / convbp::cudnn::db_group(s.pq));
        const unsigned rows = unsigned(s.n * s.k);
        EXPECT_GE(l[0].grid.x * rows_per_block, rows);
        EXPECT_LT((l[0].grid.x - 1) * rows_per_block, rows);
        EXPECT_GE(l[1].grid.x * unsigned(kDbBlock), unsigned(s.k));
        EXPECT_LT((l[1].grid.x - 1) * unsigned(kDbBlock), unsigned(s.k));
        continue;
      }
      const auto g = convbp::cudnn::db_nhwc_grid(s.n * s.pq, s.k, s.wave);
      const std::int64_t rows = s.n * s.pq;
      EXPECT_EQ(std::int64_t(l[0].grid.x), g.blocks());
      EXPECT_GE(std::int64_t(g.chunks) * g.chunk_rows, rows);
      EXPECT_LT(std::int64_t(g.chunks - 1) * g.chunk_rows, rows);
      EXPECT_GE(g.tiles * g.width, s.k);
      EXPECT_LT((g.tiles - 1) * g.width, s.k);
      const int wave = s.wave > 0 ? s.wave : convbp::cudnn::kDbNhwcBlocks;
      EXPECT_LE(g.blocks(), std::max(wave, g.tiles));
      // At least 16 rows per thread in every chunk but the last, where there are rows enough.
      if (rows >= std::int64_t(g.lanes) * convbp::cudnn::kDbNhwcRowsPerLane) {
        EXPECT_GE(g.chunk_rows, std::int64_t(g.lanes) * convbp::cudnn::kDbNhwcRowsPerLane);
      }
      EXPECT_GE(l[1].grid.x * unsigned(kDbNhwcChannelsPerBlock), unsigned(s.k));
      EXPECT_LT((l[1].grid.x - 1) * unsigned(kDbNhwcChannelsPerBlock), unsigned(s.k));
    }
  }
}

}  // namespace
