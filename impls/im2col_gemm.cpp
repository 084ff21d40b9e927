// im2col + GEMM on OpenBLAS, in two arrangements of the same math (docs/conv_backward.md):
//
//   col_b  = im2col(x_b)                  [(c/g)*r*s, p*q] per group
//   dw    += dy_b * col_b^T               [k/g, (c/g)*r*s]
//   dcol_b = w^T * dy_b                   [(c/g)*r*s, p*q]
//   dx_b   = col2im(dcol_b)
//   db     = sum of dy over n, p, q
//
// `per_sample` is the seed's loop as SINGA writes it: one sample at a time, multithreaded GEMM,
// single-threaded im2col/col2im. `batched` arranges the same calls for speed (see BatchedPlan).
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backward.h"
#include "blas.h"
#include "conv_util.h"

namespace convbp {
namespace {

// A 1x1, stride-1, unpadded kernel's im2col is the identity: col_b is x_b itself.
bool col_is_input(const ConvProblem& pr) {
  return pr.r == 1 && pr.s == 1 && pr.stride_h == 1 && pr.stride_w == 1 && pr.pad_top == 0 &&
         pr.pad_left == 0 && pr.pad_bottom == 0 && pr.pad_right == 0;
}

// Per-group matrix sizes; col_elems is the col buffer one sample needs (none when col is x).
struct Dims {
  std::int64_t cpg, kpg, crs, pq, in_plane, col_elems;
  explicit Dims(const ConvProblem& pr)
      : cpg(pr.c_per_group()),
        kpg(pr.k_per_group()),
        crs(pr.c_per_group() * pr.r * pr.s),
        pq(pr.p() * pr.q()),
        in_plane(pr.h * pr.w),
        col_elems(col_is_input(pr) ? 0 : crs * pq) {}
};

// One channel's rows of col: col[i*s + j][p*Q + q] = x[p*sh - pt + i*dh][q*sw - pl + j*dw], 0 in
// the padding; row i*s + j starts at col + (i*s + j) * ld.
void im2col_channel(const ConvProblem& pr, const float* plane, float* col, std::int64_t ld) {
  const std::int64_t P = pr.p(), Q = pr.q();
  for (std::int64_t i = 0; i < pr.r; ++i) {
    const OutputRange ps = valid_outputs(P, pr.h, pr.stride_h, pr.pad_top, i * pr.dilation_h);
    for (std::int64_t j = 0; j < pr.s; ++j) {
      const OutputRange qs = valid_outputs(Q, pr.w, pr.stride_w, pr.pad_left, j * pr.dilation_w);
      // Input column of output column q: q*stride + offset (in range for q in qs).
      const std::int64_t offset = j * pr.dilation_w - pr.pad_left;
      float* out = col + (i * pr.s + j) * ld;
      std::fill(out, out + ps.lo * Q, 0.0f);
      for (std::int64_t p = ps.lo; p < ps.hi; ++p) {
        const float* row = plane + (p * pr.stride_h - pr.pad_top + i * pr.dilation_h) * pr.w;
        float* out_row = out + p * Q;
        std::fill(out_row, out_row + qs.lo, 0.0f);
        if (pr.stride_w == 1) {
          std::copy(row + qs.lo + offset, row + qs.hi + offset, out_row + qs.lo);
        } else {
          for (std::int64_t q = qs.lo; q < qs.hi; ++q) out_row[q] = row[q * pr.stride_w + offset];
        }
        std::fill(out_row + qs.hi, out_row + Q, 0.0f);
      }
      std::fill(out + ps.hi * Q, out + P * Q, 0.0f);
    }
  }
}

// The adjoint of im2col_channel: dx[h][w] = sum of every col entry that im2col copied x[h][w]
// into (overlapping windows accumulate). Overwrites the plane.
void col2im_channel(const ConvProblem& pr, const float* col, std::int64_t ld, float* plane) {
  const std::int64_t P = pr.p(), Q = pr.q();
  std::fill(plane, plane + pr.h * pr.w, 0.0f);
  for (std::int64_t i = 0; i < pr.r; ++i) {
    const OutputRange ps = valid_outputs(P, pr.h, pr.stride_h, pr.pad_top, i * pr.dilation_h);
    for (std::int64_t j = 0; j < pr.s; ++j) {
      const OutputRange qs = valid_outputs(Q, pr.w, pr.stride_w, pr.pad_left, j * pr.dilation_w);
      const std::int64_t offset = j * pr.dilation_w - pr.pad_left;
      const float* in = col + (i * pr.s + j) * ld;
      for (std::int64_t p = ps.lo; p < ps.hi; ++p) {
        float* row = plane + (p * pr.stride_h - pr.pad_top + i * pr.dilation_h) * pr.w;
        const float* in_row = in + p * Q;
        for (std::int64_t q = qs.lo; q < qs.hi; ++q) row[q * pr.stride_w + offset] += in_row[q];
      }
    }
  }
}

// A sample's col for `channels` channels, rows of length p*q packed densely.
void im2col(const ConvProblem& pr, std::int64_t channels, const float* x, float* col) {
  const std::int64_t rows = pr.r * pr.s, pq = pr.p() * pr.q();
  for (std::int64_t c = 0; c < channels; ++c) {
    im2col_channel(pr, x + c * pr.h * pr.w, col + c * rows * pq, pq);
  }
}

void col2im(const ConvProblem& pr, std::int64_t channels, const float* col, float* dx) {
  const std::int64_t rows = pr.r * pr.s, pq = pr.p() * pr.q();
  for (std::int64_t c = 0; c < channels; ++c) {
    col2im_channel(pr, col + c * rows * pq, pq, dx + c * pr.h * pr.w);
  }
}

void bias_gradient(const ConvProblem& pr, const float* dy, float* db) {
  const std::int64_t pq = pr.p() * pr.q();
  for (std::int64_t k = 0; k < pr.k; ++k) {
    float acc = 0.0f;
    for (std::int64_t n = 0; n < pr.n; ++n) {
      const float* plane = dy + (n * pr.k + k) * pq;
      for (std::int64_t i = 0; i < pq; ++i) acc += plane[i];
    }
    db[k] = acc;
  }
}

// One sample, one group of the data pass: dcol = w_g^T * dy_bg, then dx_bg = col2im(dcol).
void data_sample_group(const ConvProblem& pr, const Dims& d, const float* w_g, const float* dy_bg,
                       float* dx_bg, float* dcol) {
  const bool direct = col_is_input(pr);
  float* out = direct ? dx_bg : dcol;  // 1x1 stride 1: col2im is the identity too
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d.crs, d.pq, d.kpg, 1.0f, w_g, d.crs, dy_bg,
              d.pq, 0.0f, out, d.pq);
  if (!direct) col2im(pr, d.cpg, dcol, dx_bg);
}

// One sample, one group of the weights pass: dw_g += dy_bg * im2col(x_bg)^T (beta 0 or 1).
void weights_sample_group(const ConvProblem& pr, const Dims& d, const float* x_bg,
                          const float* dy_bg, float* dw_g, float* col, float beta) {
  const float* cols = x_bg;
  if (!col_is_input(pr)) {
    im2col(pr, d.cpg, x_bg, col);
    cols = col;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d.kpg, d.crs, d.pq, 1.0f, dy_bg, d.pq, cols,
              d.pq, beta, dw_g, d.crs);
}

// Samples [b0, b1) one at a time, every group; the weights pass overwrites dw at the first
// sample and accumulates after it.
void run_samples(const ConvProblem& pr, const Dims& d, Pass pass, const Tensors& t, std::int64_t b0,
                 std::int64_t b1, float* col, float* dw) {
  for (std::int64_t b = b0; b < b1; ++b) {
    for (std::int64_t g = 0; g < pr.groups; ++g) {
      const float* dy_bg = t.dy_as<float>() + (b * pr.k + g * d.kpg) * d.pq;
      if (pass == Pass::data) {
        data_sample_group(pr, d, t.w_as<float>() + g * d.kpg * d.crs, dy_bg,
                          t.dx_as<float>() + (b * pr.c + g * d.cpg) * d.in_plane, col);
      } else {
        weights_sample_group(pr, d, t.x_as<float>() + (b * pr.c + g * d.cpg) * d.in_plane, dy_bg,
                             dw + g * d.kpg * d.crs, col, b == b0 ? 0.0f : 1.0f);
      }
    }
  }
}

// The seed's loop: for each sample (and group), one im2col/col2im and one GEMM per output.
class PerSamplePlan final : public Plan {
 public:
  PerSamplePlan(const ConvProblem& pr, Pass pass) : pr_(pr), pass_(pass), d_(pr) {}
  std::size_t workspace_bytes() const override { return d_.col_elems * sizeof(float); }
  std::string detail() const override { return "OpenBLAS sgemm per sample and group"; }

  void run(const Tensors& t, void* workspace) override {
    run_samples(pr_, d_, pass_, t, 0, pr_.n, static_cast<float*>(workspace), t.dw_as<float>());
    if (pass_ == Pass::weights) bias_gradient(pr_, t.dy_as<float>(), t.db_as<float>());
  }

 private:
  ConvProblem pr_;
  Pass pass_;
  Dims d_;
};

// Sets OpenBLAS to one thread for the lifetime of the guard, then back to the count it had,
// which is the caller's (a host application may run OpenBLAS with its own setting) and need
// not be threads().
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() : saved_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
  ~SingleThreadedBlas() { openblas_set_num_threads(saved_); }

 private:
  int saved_;
};

// Why this arrangement: on the shapes that dominate training (batch >= thread count), the
// seed's loop leaves im2col/col2im single-threaded and gives each multithreaded GEMM a thin
// slice (k/g rows), where OpenBLAS splits work poorly. Here each thread takes whole samples
// with a single-threaded GEMM and its own col buffer, so im2col, GEMM and col2im all run in
// parallel with no synchronisation and each thread's working set stays in its own cache;
// the weights pass keeps one dw accumulator per thread and sums them once at the end.
// With fewer samples than threads it falls back to the per-sample loop (threaded GEMM).
// Measured (ResNet-50 layers, batch 8, 2 threads): 1.1-1.6x faster than per_sample. An
// arrangement that packs a chunk of samples side by side into one threaded GEMM of about
// 2048 columns (better shaped for res5's 7x7 images) measured 5-25% slower than this one on
// every layer, and was dropped.
//
// The team OpenMP gives may be smaller than planned (OMP_THREAD_LIMIT, a caller's parallel
// region, where nested regions get one thread): samples and the dw reduction are split by the
// team's actual size, and a team of one runs every sample in order.
//
// The workspace is capped at kWorkspaceCap (fewer workers when one worker's buffers times the
// thread count would exceed it, never fewer than one): a per-thread im2col buffer of a large
// layer (VGG-16 conv1_2 at batch 16: 116 MB) times many threads would otherwise ask for
// gigabytes where the per-sample loop needs one buffer.
class BatchedPlan final : public Plan {
 public:
  static constexpr std::size_t kWorkspaceCap = std::size_t{1} << 30;

  BatchedPlan(const ConvProblem& pr, Pass pass) : pr_(pr), pass_(pass), d_(pr) {
    const std::size_t per_worker = per_worker_floats() * sizeof(float);
    const std::int64_t fit =
        std::max<std::int64_t>(1, kWorkspaceCap / std::max<std::size_t>(per_worker, 1));
    workers_ = int(std::min<std::int64_t>({threads(), pr.n, fit}));
  }

  std::size_t workspace_bytes() const override {
    return per_worker_floats() * workers_ * sizeof(float);
  }
  std::string detail() const override {
    return workers_ > 1 ? "samples split across " + std::to_string(workers_) +
                              " threads, single-threaded OpenBLAS sgemm each"
                        : "one sample at a time, threaded OpenBLAS sgemm";
  }

  void run(const Tensors& t, void* workspace) override {
    float* base = static_cast<float*>(workspace);
    if (workers_ <= 1) {
      run_samples(pr_, d_, pass_, t, 0, pr_.n, base, t.dw_as<float>());
      if (pass_ == Pass::weights) bias_gradient(pr_, t.dy_as<float>(), t.db_as<float>());
      return;
    }
    const std::size_t per_worker = per_worker_floats();
    SingleThreadedBlas single;
#pragma omp parallel num_threads(workers_)
    {
      // The team, not workers_: it may be smaller than asked for (see above).
      const int id = omp_get_thread_num(), team = omp_get_num_threads();
      float* col = base + id * per_worker;
      float* dw_acc = col + d_.col_elems;
      // Static contiguous split: thread id takes samples [id*n/team, (id+1)*n/team).
      run_samples(pr_, d_, pass_, t, id * pr_.n / team, (id + 1) * pr_.n / team, col, dw_acc);
      if (pass_ == Pass::weights) {
#pragma omp barrier
        // Reduce the per-thread accumulators, each thread summing its own slice of dw.
        const std::int64_t total = pr_.w_elems();
        const std::int64_t lo = id * total / team, hi = (id + 1) * total / team;
        for (std::int64_t i = lo; i < hi; ++i) {
          float sum = 0.0f;
          for (int wk = 0; wk < team; ++wk) sum += base[wk * per_worker + d_.col_elems + i];
          t.dw_as<float>()[i] = sum;
        }
      }
    }
    if (pass_ == Pass::weights) bias_gradient(pr_, t.dy_as<float>(), t.db_as<float>());
  }

 private:
  // One worker's buffers: its col, and in the weights pass its dw accumulator.
  std::size_t per_worker_floats() const {
    return std::size_t(d_.col_elems) + (pass_ == Pass::weights ? std::size_t(pr_.w_elems()) : 0);
  }

  ConvProblem pr_;
  Pass pass_;
  Dims d_;
  int workers_ = 1;
};

// OpenBLAS takes matrix sizes and leading dimensions as 32-bit ints (blasint), so a valid shape
// whose per-group GEMM is larger is declined rather than split; one sample's col buffer must
// also fit the buffer limit.
Support gemm_fits(const ConvProblem& pr) {
  constexpr std::int64_t kMaxSize = std::numeric_limits<blasint>::max();
  const std::int64_t crs = pr.c_per_group() * pr.r * pr.s;  // <= w's element count
  const std::int64_t pq = pr.p() * pr.q();                  // <= dy's element count
  if (crs > kMaxSize || pq > kMaxSize) {
    return Support::no("needs (c/groups)*r*s (here " + std::to_string(crs) + ") and p*q (here " +
                       std::to_string(pq) + ") each at most " + std::to_string(kMaxSize) +
                       ", OpenBLAS's 32-bit matrix size");
  }
  if (!col_is_input(pr) && crs * pq > kMaxBufferBytes / std::int64_t(sizeof(float))) {
    return Support::no("one sample's im2col buffer ((c/groups)*r*s x p*q floats) would exceed " +
                       std::to_string(kMaxBufferBytes >> 30) + " GiB");
  }
  return Support::yes();
}

const char* openblas_threading() {
  switch (openblas_get_parallel()) {
    case 0:
      return "sequential";
    case 1:
      return "pthreads";
    default:
      return "openmp";
  }
}

// Per dtype and layout. bf16 would run on OpenBLAS's cblas_sbgemm (bf16 inputs, fp32
// accumulation and output), but Debian 12's OpenBLAS 0.3.21 declares it in cblas.h and was built
// without BUILD_BFLOAT16: the library has no such symbol (nm -D; measured 2026-12-01), so there
// is nothing to call. OpenBLAS has no fp16 GEMM at all. The columns are gathered from NCHW
// planes; NHWC would need another im2col and GEMM orientation, not written.
Support dtype_support(const ConvProblem& pr) {
  if (pr.dtype == DType::bf16) {
    const bool has_sbgemm = dlsym(RTLD_DEFAULT, "cblas_sbgemm") != nullptr;
    return Support::no(has_sbgemm
                           ? "bf16 im2col on cblas_sbgemm is not written (this OpenBLAS has it)"
                           : "needs cblas_sbgemm for bf16, which this OpenBLAS (" +
                                 std::string(openblas_get_config()) +
                                 ") lacks: built without BUILD_BFLOAT16");
  }
  if (pr.dtype == DType::f16) return Support::no("OpenBLAS has no fp16 GEMM");
  if (pr.layout != Layout::nchw) {
    return Support::no("gathers its columns from NCHW planes; NHWC is not written");
  }
  return Support::yes();
}

template <typename PlanType>
class Im2colGemm final : public Backward {
 public:
  Im2colGemm(std::string variant, Roles roles)
      : name_("im2col_gemm." + std::move(variant)), roles_(roles) {}
  std::string name() const override { return name_; }
  Roles roles() const override { return roles_; }
  std::vector<std::pair<std::string, std::string>> library_versions() const override {
    return {{"openblas", openblas_get_config()},
            {"openblas_core", openblas_get_corename()},
            {"openblas_threading", openblas_threading()}};
  }
  Support supports(const ConvProblem& problem, Pass) const override {
    if (Support s = dtype_support(problem); !s.ok) return s;
    return gemm_fits(problem);
  }
  std::unique_ptr<Plan> plan(const ConvProblem& problem, Pass pass) const override {
    return std::make_unique<PlanType>(problem, pass);
  }

 private:
  std::string name_;
  Roles roles_;
};

}  // namespace

std::vector<std::unique_ptr<Backward>> make_im2col_gemm_backwards() {
  std::vector<std::unique_ptr<Backward>> list;
  // per_sample, the seed's loop, is what the speedup column compares with on the CPU. Both are
  // direct summation, the Autotuner's first fallbacks (batched, the faster, first).
  list.push_back(std::make_unique<Im2colGemm<PerSamplePlan>>(
      "per_sample", Roles{.reference = false, .baseline = true, .fallback = 2}));
  list.push_back(std::make_unique<Im2colGemm<BatchedPlan>>(
      "batched", Roles{.reference = false, .baseline = false, .fallback = 1}));
  return list;
}

}  // namespace convbp
