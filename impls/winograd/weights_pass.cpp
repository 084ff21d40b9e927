// The weights pass with Winograd transforms (Lavin & Gray 2016, section 5; docs/winograd.md):
// dw is the correlation of x with dy, so each m x m tile of dy and the alpha x alpha tile of x
// under it contribute a 3x3 correlation, which is the F(3x3, m x m) algorithm obtained by
// swapping the roles of the F(m x m, 3x3) matrices:
//
//   D[xi][k][t] = (A dy_tile(k, t) A^T)[xi]        dy transform (m x m -> alpha x alpha)
//   X[xi][c][t] = (B^T x_tile(c, t) B)[xi]         x transform, the data pass's input transform
//   W[xi][k][c] = sum_t D[xi][k][t] X[xi][c][t]    alpha^2 matrix products, summed over all tiles
//   dw[k][c]    = G^T W[.][k][c] G                 once, after the sum (alpha x alpha -> 3x3)
//
// The tiles cover dy (n x p x q); the x tile of dy tile (t_h, t_w) starts at
// (t_h m - pad_top, t_w m - pad_left), zero outside x. Each thread sums its tiles into its own
// W; the output transform adds the threads' W in a fixed order, so results are deterministic.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "tiles.h"
#include "winograd.h"

namespace convbp::winograd {
namespace {

// Every size the weights pass derives from the problem, in one place.
struct WeightsShape {
  int m = 0, alpha = 0;
  std::int64_t groups = 0, kg = 0, cg = 0, kg3 = 0, cg4 = 0;  // kg3, cg4: rounded up to 3, 4
  TileGrid grid;                                              // m x m tiles over dy
  Window dy_window, x_window;  // each tile's m x m dy window and alpha x alpha x window
  std::int64_t block = 0;      // tiles per block, a multiple of 8
  std::int64_t a2() const { return std::int64_t(alpha) * alpha; }
  // Floats from one transform position's matrix to the next (see matrix_stride).
  std::int64_t x_stride() const { return matrix_stride(cg4 * block); }
  std::int64_t d_stride() const { return matrix_stride(kg3 * block); }
  std::int64_t w_stride() const { return matrix_stride(kg3 * cg4); }
  std::int64_t w_floats() const { return groups * a2() * w_stride(); }
  std::int64_t lane_groups() const { return block / 8; }
  std::int64_t blocks() const { return (grid.total() + block - 1) / block; }
};

// Tiles per block. The kernel sums over a block's tiles before adding to W, so longer blocks
// cost less per tile; measured on the ResNet-50 and VGG-16 3x3 layers over blocks of 32..512
// tiles (docs/winograd.md), 128 to 256 were best throughout. No block is larger than an even
// share of the tiles per thread.
std::int64_t weights_block_tiles(std::int64_t total, int workers) {
  const std::int64_t block = 256;
  const std::int64_t share = round_up((total + workers - 1) / workers, 8);
  return std::max<std::int64_t>(8, std::min(block, share));
}

// Where the tiles of one block sit: their x and dy windows, 8 tiles per entry. Set once per
// block and shared by every channel and group.
template <typename F>
struct BlockLanes {
  std::vector<TileLanes<F::alpha, F::alpha>> x;
  std::vector<TileLanes<F::m, F::m>> dy;
};

// One block of tiles, one group: transforms, then W[g] += the block's products (W[g] = them,
// for a thread's first block: `accumulate` false).
template <typename F>
CONVBP_AVX2 void weights_block(const WeightsShape& s, const float* x, const float* dy,
                               std::int64_t g, std::int64_t first, const BlockLanes<F>& lanes,
                               float* xbuf, float* dbuf, float* w, bool accumulate) {
  constexpr int A = F::alpha, A2 = A * A, M = F::m;
  const std::int64_t tiles = std::min(s.block, s.grid.total() - first);
  const std::int64_t lane_groups = (tiles + 7) / 8;
  const std::int64_t T = s.block, xs = s.x_stride(), ds = s.d_stride(), ws = s.w_stride();

  // X[xi][c][t] and D[xi][k][t], channel by channel so that the loads sweep each plane in order.
  const float* x_g = x + g * s.cg * s.x_window.plane();
  for (std::int64_t c = 0; c < s.cg; ++c) {
    const float* plane = x_g + c * s.x_window.plane();
    for (std::int64_t lg = 0; lg < lane_groups; ++lg) {
      __m256 in[A2], out[A2];
      prefetch_tiles(plane, s.x_window.plane(), s.x_window.width, lanes.x[lg]);
      load_tiles<A, A>(plane, s.x_window.width, lanes.x[lg], in);
      transform_2d<typename F::InputT>(in, out);
      float* dst = xbuf + c * T + lg * 8;
      for (int i = 0; i < A2; ++i) _mm256_store_ps(dst + i * xs, out[i]);
    }
  }
  const float* dy_g = dy + g * s.kg * s.dy_window.plane();
  for (std::int64_t k = 0; k < s.kg; ++k) {
    const float* plane = dy_g + k * s.dy_window.plane();
    for (std::int64_t lg = 0; lg < lane_groups; ++lg) {
      __m256 in[M * M], out[A2];
      prefetch_tiles(plane, s.dy_window.plane(), s.dy_window.width, lanes.dy[lg]);
      load_tiles<M, M>(plane, s.dy_window.width, lanes.dy[lg], in);
      transform_2d<typename F::GradOutput>(in, out);
      float* dst = dbuf + k * T + lg * 8;
      for (int i = 0; i < A2; ++i) _mm256_store_ps(dst + i * ds, out[i]);
    }
  }

  // W[xi] += D[xi] X[xi]^T, summed over the block's tiles.
  const std::int64_t count = lane_groups * 8;
  float* w_g = w + g * A2 * ws;
  for (int i = 0; i < A2; ++i) {
    const float* d_i = dbuf + i * ds;
    const float* x_i = xbuf + i * xs;
    float* w_i = w_g + i * ws;
    for (std::int64_t k = 0; k < s.kg3; k += 3) {
      for (std::int64_t c = 0; c < s.cg4; c += 4) {
        if (accumulate) {
          dot_3x4<true>(count, d_i + k * T, T, x_i + c * T, T, w_i + k * s.cg4 + c, s.cg4);
        } else {
          dot_3x4<false>(count, d_i + k * T, T, x_i + c * T, T, w_i + k * s.cg4 + c, s.cg4);
        }
      }
    }
  }
}

// dw for filter k and channels c0..c0+7 of group g: the threads' W (worker_stride floats
// apart) summed in thread order, then G^T W G.
template <typename F>
CONVBP_AVX2 void finish_filters(const WeightsShape& s, const float* w, std::int64_t worker_stride,
                                int workers, float* dw, std::int64_t g, std::int64_t k,
                                std::int64_t c0) {
  constexpr int A2 = F::alpha * F::alpha;
  const std::int64_t valid = std::min<std::int64_t>(8, s.cg - c0);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(valid)), lane);
  __m256 sum[A2];
  for (int i = 0; i < A2; ++i) {
    const float* src = w + (g * A2 + i) * s.w_stride() + k * s.cg4 + c0;
    sum[i] = _mm256_maskload_ps(src, mask);
    for (int t = 1; t < workers; ++t) {
      sum[i] = _mm256_add_ps(sum[i], _mm256_maskload_ps(src + t * worker_stride, mask));
    }
  }
  __m256 taps[9];
  transform_2d<typename F::FilterGradT>(sum, taps);
  alignas(32) float last[8];
  _mm256_store_ps(last, taps[8]);
  transpose8x8(taps);  // taps[l] = taps 0..7 of channel c0 + l
  float* dst = dw + ((g * s.kg + k) * s.cg + c0) * 9;
  for (std::int64_t l = 0; l < valid; ++l) {
    _mm256_storeu_ps(dst + l * 9, taps[l]);
    dst[l * 9 + 8] = last[l];
  }
}

// db[k] = sum of dy[n][k] over n, p, q.
CONVBP_AVX2 void bias_gradient(const float* dy, std::int64_t n, std::int64_t kk, std::int64_t pq,
                               std::int64_t k, float* db) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  float tail = 0.0f;
  for (std::int64_t b = 0; b < n; ++b) {
    const float* plane = dy + (b * kk + k) * pq;
    std::int64_t i = 0;
    for (; i + 32 <= pq; i += 32) {
      for (int a = 0; a < 4; ++a)
        acc[a] = _mm256_add_ps(acc[a], _mm256_loadu_ps(plane + i + 8 * a));
    }
    for (; i + 8 <= pq; i += 8) acc[0] = _mm256_add_ps(acc[0], _mm256_loadu_ps(plane + i));
    for (; i < pq; ++i) tail += plane[i];
  }
  const __m256 total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  const __m128 sums =
      lane_sums(total, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
  db[k] = _mm_cvtss_f32(sums) + tail;
}

template <typename F>
class WeightsPlan final : public Plan {
 public:
  explicit WeightsPlan(const ConvProblem& pr) : workers_(std::max(1, threads())), pr_(pr) {
    s_.m = F::m;
    s_.alpha = F::alpha;
    s_.groups = pr.groups;
    s_.kg = pr.k_per_group();
    s_.cg = pr.c_per_group();
    s_.kg3 = round_up(s_.kg, 3);
    s_.cg4 = round_up(s_.cg, 4);
    s_.grid = {pr.n, pr.p(), pr.q(), F::m};
    s_.dy_window = {0, 0, pr.p(), pr.q(), pr.k};
    s_.x_window = {-pr.pad_top, -pr.pad_left, pr.h, pr.w, pr.c};
    s_.block = weights_block_tiles(s_.grid.total(), workers_);
    workers_ = int(std::min<std::int64_t>(workers_, s_.blocks()));
    lanes_.resize(workers_);
    for (BlockLanes<F>& l : lanes_) {
      l.x.resize(s_.lane_groups());
      l.dy.resize(s_.lane_groups());
    }
  }

  std::size_t workspace_bytes() const override { return kAlign + workers_ * worker_bytes(); }

  std::string detail() const override {
    return "F(3x3," + std::to_string(F::m) + "x" + std::to_string(F::m) + ") over dy tiles; " +
           std::to_string(s_.blocks()) + " blocks of " + std::to_string(s_.block) + " tiles over " +
           std::to_string(workers_) +
           " threads, one transformed-gradient sum per thread; own AVX2 3x4 FMA kernel";
  }

  void run(const Tensors& t, void* workspace) override {
    float* base = align_up(workspace);
    const std::int64_t stride = std::int64_t(worker_bytes() / sizeof(float));
    const std::int64_t blocks = s_.blocks();
    const std::int64_t c8s = (s_.cg + 7) / 8;
    const std::int64_t finish_items = s_.groups * s_.kg * c8s;
#pragma omp parallel num_threads(workers_)
    {
      // The team may be smaller than asked for (OMP_THREAD_LIMIT, nesting): split by its size.
      const int id = omp_get_thread_num(), team = omp_get_num_threads();
      float* w = base + id * stride;
      float* xbuf = w + floats_bytes(s_.w_floats()) / sizeof(float);
      float* dbuf = xbuf + floats_bytes(s_.a2() * s_.x_stride()) / sizeof(float);
      clear_padding(xbuf, dbuf);
      BlockLanes<F>& lanes = lanes_[id];
      // A fixed, contiguous share of the blocks per thread (at least one: team <= blocks), so
      // that each thread's sum order is fixed and dw is deterministic.
      const std::int64_t b0 = id * blocks / team, b1 = (id + 1) * blocks / team;
      for (std::int64_t b = b0; b < b1; ++b) {
        const std::int64_t first = b * s_.block;
        for (std::int64_t lg = 0; lg < s_.lane_groups(); ++lg) {
          lanes.x[lg].set(s_.grid, first + lg * 8, s_.x_window);
          lanes.dy[lg].set(s_.grid, first + lg * 8, s_.dy_window);
        }
        for (std::int64_t g = 0; g < s_.groups; ++g) {
          weights_block<F>(s_, t.x_as<float>(), t.dy_as<float>(), g, first, lanes, xbuf, dbuf, w,
                           b > b0);
        }
      }
#pragma omp barrier
#pragma omp for schedule(static)
      for (std::int64_t item = 0; item < finish_items; ++item) {
        const std::int64_t g = item / (s_.kg * c8s), k = item / c8s % s_.kg;
        finish_filters<F>(s_, base, stride, team, t.dw_as<float>(), g, k, item % c8s * 8);
      }
#pragma omp for schedule(static)
      for (std::int64_t k = 0; k < pr_.k; ++k) {
        bias_gradient(t.dy_as<float>(), pr_.n, pr_.k, pr_.p() * pr_.q(), k, t.db_as<float>());
      }
    }
  }

 private:
  std::size_t worker_bytes() const {
    return floats_bytes(s_.w_floats()) + floats_bytes(s_.a2() * s_.x_stride()) +
           floats_bytes(s_.a2() * s_.d_stride());
  }

  // The rows of X and D past cg and kg (padding up to the kernel's 4 and 3) are never written
  // by the transforms, and must read as zero.
  void clear_padding(float* xbuf, float* dbuf) const {
    for (std::int64_t i = 0; i < s_.a2(); ++i) {
      std::memset(xbuf + i * s_.x_stride() + s_.cg * s_.block, 0,
                  (s_.cg4 - s_.cg) * s_.block * sizeof(float));
      std::memset(dbuf + i * s_.d_stride() + s_.kg * s_.block, 0,
                  (s_.kg3 - s_.kg) * s_.block * sizeof(float));
    }
  }

  WeightsShape s_;
  int workers_;
  ConvProblem pr_;
  std::vector<BlockLanes<F>> lanes_;  // per worker: the lane tables of its current block
};

}  // namespace

std::unique_ptr<Plan> make_weights_plan(const ConvProblem& problem, int m) {
  if (m == 2) return std::make_unique<WeightsPlan<F2>>(problem);
  return std::make_unique<WeightsPlan<F4>>(problem);
}

}  // namespace convbp::winograd
