// A bare OpenBLAS sgemm, with nothing of convbp in it: which kernels (core) OpenBLAS runs on
// this CPU, and what they reach. The default shape (M256 N784 K1152) is the im2col GEMM of a 3x3
// layer with 128 input channels and 256 filters at 28x28 (K = c*r*s, N = p*q); inputs hold real
// values (an untouched buffer reads the shared zero page and flatters a memory-bound kernel).
//
//   ./openblas_sgemm [M N K] [threads]
//   OPENBLAS_CORETYPE=SkylakeX ./openblas_sgemm      (the core is read when OpenBLAS loads)
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  const int m = argc > 3 ? std::atoi(argv[1]) : 256;
  const int n = argc > 3 ? std::atoi(argv[2]) : 784;
  const int k = argc > 3 ? std::atoi(argv[3]) : 1152;
  const int threads = argc == 2 ? std::atoi(argv[1]) : argc > 4 ? std::atoi(argv[4]) : 2;
  if (m <= 0 || n <= 0 || k <= 0 || threads <= 0) {
    std::fprintf(stderr, "usage: openblas_sgemm [M N K] [threads]\n");
    return 2;
  }
  openblas_set_num_threads(threads);
  std::vector<float> a(std::size_t(m) * k), b(std::size_t(k) * n), c(std::size_t(m) * n);
  unsigned state = 12345;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return float(state >> 8) / float(1 << 24) - 0.5f;
  };
  for (float& v : a) v = next();
  for (float& v : b) v = next();
  for (float& v : c) v = next();
  auto call = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n,
                0.0f, c.data(), n);
  };
  for (int i = 0; i < 5; ++i) call();  // warm-up: threads, caches, frequency
  // Best of 7 rounds of about 0.2 s each.
  const double flops = 2.0 * m * n * k;
  double best = 0;
  for (int round = 0; round < 7; ++round) {
    int calls = 0;
    const auto start = std::chrono::steady_clock::now();
    double s = 0;
    do {
      call();
      ++calls;
      s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (s < 0.2);
    best = std::max(best, flops * calls / s / 1e9);
  }
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  std::printf("core %s (OPENBLAS_CORETYPE %s)  sgemm M%d N%d K%d  %d threads  %.1f GF/s\n",
              openblas_get_corename(), forced ? forced : "unset", m, n, k, threads, best);
  return 0;
}
