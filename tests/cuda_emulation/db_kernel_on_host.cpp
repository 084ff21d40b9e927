// The project's db kernel (impls/cudnn/db_kernel.cu), its own source compiled as C++, run on the
// host under cuda_emulation.h's model of CUDA's threads, blocks, barriers and warp shuffles. It
// proves what the host model of cuDNN (tests/mock_cuda) cannot, since that model reimplements the
// kernel: that the kernel as written sums every element of every row once, combines its threads
// and warps right for every group size, keeps every thread on the same barriers, and reads and
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

struct Shape {
  int n, k;
  std::int64_t pq;
};

std::string describe(const Shape& s, DType dtype, std::uint64_t seed, Edge edge = Edge::end) {
  std::ostringstream o;
  o << "dy [n " << s.n << ", k " << s.k << ", p*q " << s.pq << "] " << convbp::to_string(dtype)
    << " (threads per row " << convbp::cudnn::db_group(s.pq) << "), seed " << seed
    << ", buffers against their " << (edge == Edge::end ? "end" : "start") << " guard page";
  return o.str();
}

// Row lengths from 1x1 to conv1's 112x112, for every group size (32 to 256 threads per row),
// with and without a tail after the kernel's eight-way unrolled loop, row counts that leave a
// block part empty, n past stage 2's unroll by 8, and k over one block of stage 2.
const Shape kShapes[] = {
    {1, 1, 1},    {3, 5, 7},     {2, 3, 49}, {3, 37, 100}, {2, 3, 257},  {2, 5, 1000},
    {2, 3, 2051}, {1, 2, 12544}, {17, 3, 9}, {2, 300, 4},  {5, 7, 4096},
};
const DType kDtypes[] = {DType::f32, DType::bf16, DType::f16};

enum class Values { integers, reals };

// Runs the kernel on dy filled with `values` in `dtype`, and checks partial and db against sums
// in double:
//   integers in [-3, 3]: every partial sum is an integer below 2^24, exact in fp32 whatever the
//     order, so partial must equal each row's sum exactly, and db the exact sum rounded to its
//     dtype: an element left out or counted twice changes them;
//   reals in [-1, 1): within the bound of fp32 recursive summation, (terms - 1) * 2^-24 * the
//     sum of |terms|, plus db's rounding to its dtype.
void check_kernel(const Shape& s, DType dtype, Values values, std::uint64_t seed,
                  Edge edge = Edge::end) {
  SCOPED_TRACE(describe(s, dtype, seed, edge));
  const std::size_t rows = std::size_t(s.n) * std::size_t(s.k);
  const std::size_t elements = rows * std::size_t(s.pq);
  const std::size_t esize = convbp::dtype_size(dtype);
  GuardedBuffer dy(elements * esize, edge), partial(rows * sizeof(float), edge),
      db(std::size_t(s.k) * esize, edge);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> integer(-3, 3);
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  std::vector<double> row_sum(rows, 0.0), row_abs(rows, 0.0);
  for (std::size_t i = 0; i < elements; ++i) {
    const double v = values == Values::integers ? integer(rng) : real(rng);
    convbp::store_from_double(dtype, dy.data(), i, v);
    const double stored = convbp::load_as_double(dtype, dy.data(), i);
    row_sum[i / std::size_t(s.pq)] += stored;
    row_abs[i / std::size_t(s.pq)] += std::fabs(stored);
  }
  dy.read_only();
  std::memset(partial.data(), 0xff, rows * sizeof(float));  // NaN
  for (int k = 0; k < s.k; ++k) convbp::store_from_double(dtype, db.data(), k, NAN);

  cuda_emulation::launches().clear();
  ASSERT_EQ(convbp::cudnn::enqueue_db_kernel(dy.data(), static_cast<float*>(partial.data()),
                                             db.data(), int(dtype), s.n, s.k, s.pq, nullptr),
            cudaSuccess);
  ASSERT_EQ(cuda_emulation::launches().size(), 2u) << "two stages, two launches";

  const double u32 = std::ldexp(1.0, -24);
  const double u = convbp::unit_roundoff(dtype);
  const auto* part = static_cast<const float*>(partial.data());
  for (std::size_t row = 0; row < rows; ++row) {
    const double bound = values == Values::integers ? 0.0 : double(s.pq - 1) * u32 * row_abs[row];
    ASSERT_LE(std::fabs(part[row] - row_sum[row]), bound)
        << "partial[" << row << "] (n " << row / std::size_t(s.k) << ", k "
        << row % std::size_t(s.k) << ") is " << part[row] << ", the row sums to " << row_sum[row];
  }
  for (int k = 0; k < s.k; ++k) {
    double sum = 0, abs_sum = 0;
    for (int n = 0; n < s.n; ++n) {
      sum += row_sum[std::size_t(n) * std::size_t(s.k) + std::size_t(k)];
      abs_sum += row_abs[std::size_t(n) * std::size_t(s.k) + std::size_t(k)];
    }
    const double got = convbp::load_as_double(dtype, db.data(), std::size_t(k));
    if (values == Values::integers) {
      ASSERT_EQ(got, convbp::round_to(dtype, sum)) << "db[" << k << "]";
    } else {
      const double fp32 = double(s.pq * s.n - 1) * u32 * abs_sum;
      ASSERT_LE(std::fabs(got - sum), fp32 + u * (std::fabs(sum) + fp32))
          << "db[" << k << "] is " << got << ", the sum is " << sum;
    }
  }
}

// Each shape twice: with every buffer against the guard page after it, then before it.
TEST(DbKernelOnHost, SumsEveryElementOnceInEveryDtype) {
  std::uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    for (DType dtype : kDtypes) {
      for (Edge edge : {Edge::end, Edge::start}) {
        check_kernel(s, dtype, Values::integers, seed++, edge);
      }
    }
  }
}

TEST(DbKernelOnHost, StaysWithinFp32SummationsBoundOnRealValues) {
  std::uint64_t seed = 100;
  for (const Shape& s : kShapes) {
    for (DType dtype : kDtypes) check_kernel(s, dtype, Values::reals, seed++);
  }
}

// The grid of each stage: stage 1 one group of db_group(p*q) threads per (n, k) row, stage 2 one
// thread per k, in blocks of kDbBlock threads, neither with a block that has nothing to do.
TEST(DbKernelOnHost, LaunchesNoBlockWithoutWork) {
  using convbp::cudnn::kDbBlock;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s, DType::f32, 0));
    check_kernel(s, DType::f32, Values::integers, 0);
    const auto& l = cuda_emulation::launches();
    ASSERT_EQ(l.size(), 2u);
    const unsigned rows_per_block = unsigned(kDbBlock / convbp::cudnn::db_group(s.pq));
    const unsigned rows = unsigned(s.n * s.k);
    EXPECT_EQ(l[0].block.x, unsigned(kDbBlock));
    EXPECT_GE(l[0].grid.x * rows_per_block, rows);
    EXPECT_LT((l[0].grid.x - 1) * rows_per_block, rows);
    EXPECT_GE(l[1].grid.x * unsigned(kDbBlock), unsigned(s.k));
    EXPECT_LT((l[1].grid.x - 1) * unsigned(kDbBlock), unsigned(s.k));
  }
}

}  // namespace
