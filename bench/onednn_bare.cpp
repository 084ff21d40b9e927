// A bare Google Benchmark loop around oneDNN's backward convolution primitives, with nothing of
// convbp in it: the independent check of convbp's `onednn.direct.native` timings. Same setting
// as that entry: convolution_direct, every layout format_tag::any (oneDNN's choice), forward
// hint, inputs reordered once before timing; the loop is execute() + stream wait only.
//
//   ./onednn_bare --threads=2 --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Layers: ResNet-50's 3x3 stride-1 pad-1 convolutions at batch 8 (He et al. 2016, Table 1).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

struct Layer {
  const char* name;
  memory::dim c, h, k;
};
constexpr Layer kLayers[] = {{"res2_branch2b", 64, 56, 64},
                             {"res3bcd_branch2b", 128, 28, 128},
                             {"res4b_branch2b", 256, 14, 256},
                             {"res5b_branch2b", 512, 7, 512}};
constexpr memory::dim kBatch = 8;

// Memory in the primitive's layout holding deterministic nonzero data, written through a plain
// buffer and a reorder so that any blocked padding stays zero as oneDNN requires.
memory filled(const memory::desc& chosen, const memory::dims& dims, Tag plain_tag,
              const dnnl::engine& engine, dnnl::stream& stream, std::uint32_t seed) {
  const memory::desc plain_md(dims, memory::data_type::f32, plain_tag);
  memory plain(plain_md, engine);
  float* data = static_cast<float*>(plain.get_data_handle());
  const std::size_t count = plain_md.get_size() / sizeof(float);
  for (std::size_t i = 0; i < count; ++i) {
    seed = seed * 1664525u + 1013904223u;  // LCG: cheap and reproducible
    data[i] = float(seed >> 8) / float(1u << 24) * 2.0f - 1.0f;
  }
  memory out(chosen, engine);
  dnnl::reorder(plain, out).execute(stream, plain, out);
  stream.wait();
  return out;
}

void bm_backward(benchmark::State& state, Layer layer, bool weights_pass) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::dims x{kBatch, layer.c, layer.h, layer.h}, w{layer.k, layer.c, 3, 3},
      y{kBatch, layer.k, layer.h, layer.h}, b{layer.k}, stride{1, 1}, pad{1, 1};
  auto any = [](const memory::dims& d) {
    return memory::desc(d, memory::data_type::f32, Tag::any);
  };
  const auto alg = dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::primitive_desc hint(
      {dnnl::prop_kind::forward_training, alg, any(x), any(w),
       weights_pass ? any(b) : memory::desc(), any(y), stride, pad, pad},
      engine);

  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
  std::string impl;
  if (!weights_pass) {
    const dnnl::convolution_backward_data::primitive_desc pd(
        {alg, any(x), any(w), any(y), stride, pad, pad}, engine, hint);
    impl = pd.impl_info_str();
    primitive = dnnl::convolution_backward_data(pd);
    args = {{DNNL_ARG_DIFF_DST, filled(pd.diff_dst_desc(), y, Tag::nchw, engine, stream, 1)},
            {DNNL_ARG_WEIGHTS, filled(pd.weights_desc(), w, Tag::oihw, engine, stream, 2)},
            {DNNL_ARG_DIFF_SRC, memory(pd.diff_src_desc(), engine)}};
  } else {
    const dnnl::convolution_backward_weights::primitive_desc pd(
        {alg, any(x), any(w), any(b), any(y), stride, pad, pad}, engine, hint);
    impl = pd.impl_info_str();
    primitive = dnnl::convolution_backward_weights(pd);
    args = {{DNNL_ARG_SRC, filled(pd.src_desc(), x, Tag::nchw, engine, stream, 3)},
            {DNNL_ARG_DIFF_DST, filled(pd.diff_dst_desc(), y, Tag::nchw, engine, stream, 1)},
            {DNNL_ARG_DIFF_WEIGHTS, memory(pd.diff_weights_desc(), engine)},
            {DNNL_ARG_DIFF_BIAS, memory(pd.diff_bias_desc(), engine)}};
  }
  primitive.execute(stream, args);  // warm-up: first touch of buffers and JIT code
  stream.wait();

  for (auto _ : state) {
    primitive.execute(stream, args);
    stream.wait();
  }
  const double flops = 2.0 * kBatch * layer.k * layer.h * layer.h * layer.c * 9;
  state.counters["GF/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = omp_get_max_threads();
  state.SetLabel(impl);
}

}  // namespace

int main(int argc, char** argv) {
  // --threads=N (ours, removed before Google Benchmark parses the rest): the OpenMP thread
  // count oneDNN uses, as convbp's --threads sets it.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      omp_set_num_threads(std::atoi(argv[i] + 10));
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = int(rest.size());
  for (const Layer& layer : kLayers) {
    for (bool weights_pass : {false, true}) {
      const std::string name =
          std::string("onednn_bare/") + layer.name + (weights_pass ? "/weights" : "/data");
      benchmark::RegisterBenchmark(name.c_str(), bm_backward, layer, weights_pass)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(0.3);
    }
  }
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  const dnnl_version_t* v = dnnl::version();
  benchmark::AddCustomContext("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) +
                                            "." + std::to_string(v->patch));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
