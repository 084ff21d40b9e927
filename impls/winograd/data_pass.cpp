// The data pass as a Winograd convolution (docs/winograd.md derives it): with stride 1 and no
// dilation, dx is the full correlation of dy with the filters rotated by 180 degrees,
//
//   dx[c][h][w] = sum_k sum_{i,j<3} dy[k][h + pt - 2 + i][w + pl - 2 + j] * w[k][c][2-i][2-j]
//
// (pt, pl: top and left padding), an ordinary 3x3 correlation of dy (zero outside it) with
// effective padding 2 - pad.
// Each m x m tile of dx then comes from an alpha x alpha tile of dy:
//
//   U[xi][c][k] = (G rot(w[k][c]) G^T)[xi]          filter transform (in the timed call)
//   V[xi][k][t] = (B^T dy_tile(k, t) B)[xi]          input transform
//   M[xi][c][t] = sum_k U[xi][c][k] V[xi][k][t]      alpha^2 matrix products per tile block
//   dx_tile(c, t) = A^T M[.][c][t] A                 output transform
//
// Tiles are processed in blocks, one block per thread at a time, so that a block's transformed
// data stays in that thread's cache between the three steps.
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels.h"
#include "tiles.h"
#include "winograd.h"

namespace convbp::winograd {
namespace {

// Tiles per micro-kernel panel (gemm_4xn<3>); a block's last panel may be 8 or 16 wide.
constexpr std::int64_t kPanel = 24;

// Every size the data pass derives from the problem, in one place.
struct DataShape {
  int m = 0, alpha = 0;
  std::int64_t groups = 0, kg = 0, cg = 0, cg4 = 0;  // per group; cg4: cg rounded up to 4
  TileGrid grid;                                     // m x m tiles over dx
  Window dy_window, dx_window;  // each tile's alpha x alpha input and m x m output window
  std::int64_t block = 0;       // tiles per block, a multiple of 8
  std::int64_t a2() const { return std::int64_t(alpha) * alpha; }
  // Floats from one transform position's matrix to the next (see matrix_stride).
  std::int64_t u_stride() const { return matrix_stride(cg4 * kg); }
  std::int64_t v_stride() const { return matrix_stride(kg * block); }
  std::int64_t m_stride() const { return matrix_stride(cg4 * block); }
  std::int64_t u_floats() const { return groups * a2() * u_stride(); }
  std::int64_t lane_groups() const { return block / 8; }
  std::int64_t blocks() const { return (grid.total() + block - 1) / block; }
};

// Tiles per block. Each block streams every filter matrix U[xi] once, so blocks grow with the
// channel count to reuse U over more tiles; small channel counts prefer small blocks, whose
// transformed data stays in L2. Measured on the ResNet-50 and VGG-16 3x3 layers over blocks of
// 24..288 tiles (docs/winograd.md): about max(k, c)/2, from 48 to 264. No block is larger than
// an even share of the tiles per thread.
std::int64_t data_block_tiles(std::int64_t kg, std::int64_t cg4, std::int64_t total, int workers) {
  std::int64_t block = std::clamp(round_up(std::max(kg, cg4) / 2, kPanel), 2 * kPanel, 11 * kPanel);
  const std::int64_t share = round_up((total + workers - 1) / workers, 8);
  return std::max<std::int64_t>(8, std::min(block, share));
}

// U for filter k and the 8 channels c0..c0+7 of group g, stored as U[g][xi][cp][k][4] (the
// layout gemm_4xn reads: 4 channels per k, k after k). The 8 filters are 72 consecutive floats:
// 8 loads and a transpose put tap j of every filter in one vector.
template <typename F>
CONVBP_AVX2 void transform_filters(const DataShape& s, const float* w, float* u, std::int64_t g,
                                   std::int64_t k, std::int64_t c0) {
  constexpr int A2 = F::alpha * F::alpha;
  const std::int64_t valid = std::min<std::int64_t>(8, s.cg - c0);
  const float* src = w + ((g * s.kg + k) * s.cg + c0) * 9;
  __m256 taps[8];
  alignas(32) float last[8] = {};
  for (std::int64_t l = 0; l < 8; ++l) {
    taps[l] = l < valid ? _mm256_loadu_ps(src + 9 * l) : _mm256_setzero_ps();
    if (l < valid) last[l] = src[9 * l + 8];
  }
  transpose8x8(taps);  // taps[j] = tap j of filters c0..c0+7
  // Rotated by 180 degrees: rot[i][j] = w[2-i][2-j], tap 8 - (3i + j).
  __m256 rot[9];
  rot[0] = _mm256_load_ps(last);
  for (int t = 1; t < 9; ++t) rot[t] = taps[8 - t];
  __m256 ut[A2];
  transform_2d<typename F::Filter>(rot, ut);
  float* dst = u + g * A2 * s.u_stride() + (c0 / 4 * s.kg + k) * 4;
  const bool second_panel = c0 + 4 < s.cg4;
  for (int x = 0; x < A2; ++x) {
    _mm_store_ps(dst + x * s.u_stride(), _mm256_castps256_ps128(ut[x]));
    if (second_panel)
      _mm_store_ps(dst + x * s.u_stride() + 4 * s.kg, _mm256_extractf128_ps(ut[x], 1));
  }
}

// Where the tiles of one block sit: their dy windows and dx tiles, 8 tiles per entry. Set once
// per block and shared by every channel and group.
template <typename F>
struct BlockLanes {
  std::vector<TileLanes<F::alpha, F::alpha>> in;
  std::vector<TileLanes<F::m, F::m>> out;
};

// One block of tiles, one group: input transform, products, output transform.
template <typename F>
CONVBP_AVX2 void data_block(const DataShape& s, const float* dy, const float* u, float* dx,
                            std::int64_t g, std::int64_t first, const BlockLanes<F>& lanes,
                            float* v, float* mbuf) {
  constexpr int A = F::alpha, A2 = A * A, M = F::m;
  const std::int64_t tiles = std::min(s.block, s.grid.total() - first);
  const std::int64_t width = round_up(tiles, 8);  // the block's tiles, in whole lane groups
  const std::int64_t panels = (width + kPanel - 1) / kPanel;
  const auto panel_width = [&](std::int64_t p) { return std::min(kPanel, width - p * kPanel); };
  const std::int64_t T = s.block, kg = s.kg, cg4 = s.cg4;
  const std::int64_t vs = s.v_stride(), ms = s.m_stride(), us = s.u_stride();

  // V[xi][panel][k][24 or less]: each panel is the packed [k x width] operand of gemm_4xn.
  // Channel by channel, so that the loads sweep each dy plane in order.
  const float* dy_g = dy + g * kg * s.dy_window.plane();
  for (std::int64_t k = 0; k < kg; ++k) {
    const float* plane = dy_g + k * s.dy_window.plane();
    for (std::int64_t lg = 0; lg < width / 8; ++lg) {
      __m256 d[A2], t[A2];
      prefetch_tiles(plane, s.dy_window.plane(), s.dy_window.width, lanes.in[lg]);
      load_tiles<A, A>(plane, s.dy_window.width, lanes.in[lg], d);
      transform_2d<typename F::InputT>(d, t);
      const std::int64_t p = lg / 3;
      float* dst = v + p * kg * kPanel + k * panel_width(p) + (lg % 3) * 8;
      for (int x = 0; x < A2; ++x) _mm256_store_ps(dst + x * vs, t[x]);
    }
  }

  // M[xi][c][t] = U[xi] V[xi]: the filter panel (kg x 4) stays in L1 across the tile panels.
  const float* u_g = u + g * A2 * us;
  for (int x = 0; x < A2; ++x) {
    for (std::int64_t cp = 0; cp < cg4 / 4; ++cp) {
      const float* u_panel = u_g + x * us + cp * 4 * kg;
      float* m_rows = mbuf + x * ms + cp * 4 * T;
      for (std::int64_t p = 0; p < panels; ++p) {
        const float* v_panel = v + x * vs + p * kg * kPanel;
        float* m_panel = m_rows + p * kPanel;
        switch (panel_width(p) / 8) {
          case 3:
            gemm_4xn<3>(kg, u_panel, v_panel, m_panel, T);
            break;
          case 2:
            gemm_4xn<2>(kg, u_panel, v_panel, m_panel, T);
            break;
          default:
            gemm_4xn<1>(kg, u_panel, v_panel, m_panel, T);
            break;
        }
      }
    }
  }

  // dx tiles: A^T M A, 8 tiles (lanes) at a time.
  float* dx_g = dx + g * s.cg * s.dx_window.plane();
  for (std::int64_t c = 0; c < s.cg; ++c) {
    float* plane = dx_g + c * s.dx_window.plane();
    for (std::int64_t lg = 0; lg < width / 8; ++lg) {
      __m256 mv[A2], y[M * M];
      for (int x = 0; x < A2; ++x) mv[x] = _mm256_load_ps(mbuf + x * ms + c * T + lg * 8);
      transform_2d<typename F::OutputT>(mv, y);
      prefetch_tiles<M, M, true>(plane, s.dx_window.plane(), s.dx_window.width, lanes.out[lg]);
      store_tiles<M>(plane, s.dx_window.width, lanes.out[lg], y);
    }
  }
}

template <typename F>
class DataPlan final : public Plan {
 public:
  explicit DataPlan(const ConvProblem& pr) : workers_(std::max(1, threads())) {
    s_.m = F::m;
    s_.alpha = F::alpha;
    s_.groups = pr.groups;
    s_.kg = pr.k_per_group();
    s_.cg = pr.c_per_group();
    s_.cg4 = round_up(s_.cg, 4);
    s_.grid = {pr.n, pr.h, pr.w, F::m};
    // dy tile of dx tile (t_h, t_w) starts at dy row t_h m + pad_top - 2 (see the top).
    s_.dy_window = {pr.pad_top - 2, pr.pad_left - 2, pr.p(), pr.q(), pr.k};
    s_.dx_window = {0, 0, pr.h, pr.w, pr.c};
    s_.block = data_block_tiles(s_.kg, s_.cg4, s_.grid.total(), workers_);
    workers_ = int(std::min<std::int64_t>(workers_, s_.blocks()));
    lanes_.resize(workers_);
    for (BlockLanes<F>& l : lanes_) {
      l.in.resize(s_.lane_groups());
      l.out.resize(s_.lane_groups());
    }
  }

  std::size_t workspace_bytes() const override {
    return kAlign + floats_bytes(s_.u_floats()) + workers_ * worker_bytes();
  }

  std::string detail() const override {
    return "F(" + std::to_string(F::m) + "x" + std::to_string(F::m) +
           ",3x3); filter transform G w G^T inside the timed call (w changes every step); " +
           std::to_string(s_.blocks()) + " blocks of " + std::to_string(s_.block) + " tiles over " +
           std::to_string(workers_) + " threads; own AVX2 4x24 FMA kernel";
  }

  void run(const Tensors& t, void* workspace) override {
    float* u = align_up(workspace);
    float* per_worker = u + floats_bytes(s_.u_floats()) / sizeof(float);
    // Filter items (g, channel octet, k), k fastest so that the stores into U run in order.
    const std::int64_t octets = (s_.cg + 7) / 8;
    const std::int64_t filter_items = s_.groups * octets * s_.kg;
    const std::int64_t blocks = s_.blocks();
#pragma omp parallel num_threads(workers_)
    {
#pragma omp for schedule(static)
      for (std::int64_t item = 0; item < filter_items; ++item) {
        transform_filters<F>(s_, t.w_as<float>(), u, item / (octets * s_.kg), item % s_.kg,
                             item / s_.kg % octets * 8);
      }
      const int id = omp_get_thread_num();
      float* v = per_worker + id * worker_bytes() / sizeof(float);
      float* mbuf = v + floats_bytes(s_.a2() * s_.v_stride()) / sizeof(float);
      BlockLanes<F>& lanes = lanes_[id];
      // Dynamic: blocks at the image borders cost more (masked loads and stores).
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t first = b * s_.block;
        for (std::int64_t lg = 0; lg < s_.lane_groups(); ++lg) {
          lanes.in[lg].set(s_.grid, first + lg * 8, s_.dy_window);
          lanes.out[lg].set(s_.grid, first + lg * 8, s_.dx_window);
        }
        for (std::int64_t g = 0; g < s_.groups; ++g) {
          data_block<F>(s_, t.dy_as<float>(), u, t.dx_as<float>(), g, first, lanes, v, mbuf);
        }
      }
    }
  }

 private:
  std::size_t worker_bytes() const {
    return floats_bytes(s_.a2() * s_.v_stride()) + floats_bytes(s_.a2() * s_.m_stride());
  }

  DataShape s_;
  int workers_;
  std::vector<BlockLanes<F>> lanes_;  // per worker: the lane tables of its current block
};

}  // namespace

std::unique_ptr<Plan> make_data_plan(const ConvProblem& problem, int m) {
  if (m == 2) return std::make_unique<DataPlan<F2>>(problem);
  return std::make_unique<DataPlan<F4>>(problem);
}

}  // namespace convbp::winograd
