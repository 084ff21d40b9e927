// oneDNN (DNNL 2.x C++ API) convolution backward primitives: direct, auto and Winograd, each
// timed two ways, and direct a third (docs/onednn.md):
//
//   onednn.<alg>          takes and returns the caller's plain tensors (NCHW, or NHWC for an NHWC
//                         problem); the timed call includes oneDNN's reorders into and out of the
//                         blocked layouts it chose (format_tag::any) — what a framework holding
//                         plain tensors pays per call.
//   onednn.<alg>.native   times the primitive alone on its preferred layouts: inputs are
//                         reordered in upload(), outputs back to plain in download(), both untimed.
//   onednn.direct.plain   a primitive made for the caller's activation layouts (oneDNN's nchw or
//                         nhwc tags instead of any): x, dx and dy are used in place, only the
//                         weights (small) are reordered, timed — what PyTorch's channels_last
//                         path on oneDNN does.
//
// Every primitive, reorder and memory object is created in plan(); run() only executes.
#include <algorithm>
#include <cstring>
#include <dnnl.hpp>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backward.h"

namespace convbp {
namespace {

using dnnl::algorithm;
using dnnl::memory;
using Tag = memory::format_tag;
using Args = std::unordered_map<int, memory>;

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic:
      return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "unknown isa";
  }
}

std::string version_string() {
  const dnnl_version_t* v = dnnl::version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string effective_isa() { return isa_name(dnnl::get_effective_cpu_isa()); }

bool isa_at_least(dnnl::cpu_isa isa) {
  const auto have = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto need = static_cast<unsigned>(isa);
  return (have & need) == need;  // oneDNN's ISA values are nested bit masks
}

// Why oneDNN cannot have a kernel for the problem's dtype on this CPU, in words a user can act
// on; "" when the dtype is not the reason. Asked only after oneDNN declined: oneDNN decides.
// Measured with oneDNN 2.6.3 (docs/onednn.md): bf16 convolutions exist from avx512_core up
// (emulated there with fp32 arithmetic, native with avx512_core_bf16, AMX tiles with
// avx512_core_amx); f16 convolutions exist on no CPU ISA at all.
std::string missing_kernel(const ConvProblem& pr) {
  if (pr.dtype == DType::f16) {
    return "oneDNN " + version_string() +
           " has no f16 convolution on CPUs, whatever the ISA (its f16 is reorders only; "
           "AVX512-FP16 convolution kernels, ISA avx512_core_fp16, came in oneDNN 3.x)";
  }
  if (pr.dtype == DType::bf16 && !isa_at_least(dnnl::cpu_isa::avx512_core)) {
    return "oneDNN " + version_string() +
           "'s bf16 convolutions need AVX-512 (avx512_core, "
           "emulated; native with avx512_core_bf16, AMX with avx512_core_amx); this CPU offers " +
           effective_isa();
  }
  return "";
}

const char* status_name(dnnl_status_t status) {
  switch (status) {
    case dnnl_unimplemented:
      return "unimplemented";
    case dnnl_invalid_arguments:
      return "invalid arguments";
    case dnnl_out_of_memory:
      return "out of memory";
    default:
      return "error";
  }
}

const char* algorithm_name(algorithm alg) {
  switch (alg) {
    case algorithm::convolution_direct:
      return "direct";
    case algorithm::convolution_winograd:
      return "winograd";
    default:
      return "auto";
  }
}

// A layout in oneDNN's own notation ("aBcd16b": dimension b blocked by 16; uppercase = blocked),
// built from the blocking descriptor since oneDNN 2.6 exports no formatter for it.
std::string layout_name(const memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.format_kind != dnnl_blocked) return "opaque";
  const dnnl_blocking_desc_t& blocking = d.format_desc.blocking;
  std::vector<int> order(d.ndims);
  for (int i = 0; i < d.ndims; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return blocking.strides[a] > blocking.strides[b]; });
  std::string name;
  for (int i : order) {
    bool blocked = false;
    for (int j = 0; j < blocking.inner_nblks; ++j) blocked |= blocking.inner_idxs[j] == i;
    name += char((blocked ? 'A' : 'a') + i);
  }
  for (int j = 0; j < blocking.inner_nblks; ++j) {
    name += std::to_string(blocking.inner_blks[j]) + char('a' + blocking.inner_idxs[j]);
  }
  return name;
}

memory::data_type data_type_of(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return memory::data_type::bf16;
    case DType::f16:
      return memory::data_type::f16;
    default:
      return memory::data_type::f32;
  }
}

// Descriptors of one problem in oneDNN's terms. Groups put the weights in 5D (g, k/g, c/g, r, s),
// whose plain goihw order is exactly convbp's NCHW [k, c/g, r, s]; convbp's NHWC weights
// [k, r, s, c/g] are oneDNN's ohwi (gohwi with groups), activations its nhwc. oneDNN counts
// dilation from 0. Every tensor is in the problem's dtype, db included (backward.h): a bf16
// weights pass writes dw and db in bf16, as PyTorch's autograd does (a parameter's gradient has
// the parameter's dtype); oneDNN accumulates in f32 inside and rounds once at the end.
struct Shape {
  memory::dims x, w, y, b, strides, dilates, pad_l, pad_r;
  memory::data_type type;
  bool nhwc;
  explicit Shape(const ConvProblem& pr)
      : x{pr.n, pr.c, pr.h, pr.w},
        w(pr.groups == 1 ? memory::dims{pr.k, pr.c, pr.r, pr.s}
                         : memory::dims{pr.groups, pr.k_per_group(), pr.c_per_group(), pr.r, pr.s}),
        y{pr.n, pr.k, pr.p(), pr.q()},
        b{pr.k},
        strides{pr.stride_h, pr.stride_w},
        dilates{pr.dilation_h - 1, pr.dilation_w - 1},
        pad_l{pr.pad_top, pr.pad_left},
        pad_r{pr.pad_bottom, pr.pad_right},
        type(data_type_of(pr.dtype)),
        nhwc(pr.layout == Layout::nhwc) {}

  memory::desc any(const memory::dims& dims) const { return {dims, type, Tag::any}; }
  memory::desc plain_x() const { return {x, type, nhwc ? Tag::nhwc : Tag::nchw}; }
  memory::desc plain_y() const { return {y, type, nhwc ? Tag::nhwc : Tag::nchw}; }
  memory::desc plain_w() const {
    if (w.size() == 4) return {w, type, nhwc ? Tag::ohwi : Tag::oihw};
    return {w, type, nhwc ? Tag::gohwi : Tag::goihw};
  }
  memory::desc plain_b() const { return {b, type, Tag::x}; }
};

// The backward primitive descriptor of one pass (only the one of `pass` is set). Throws
// dnnl::error when oneDNN has no implementation of `alg` for the shape.
struct BackwardDesc {
  dnnl::convolution_backward_data::primitive_desc data;
  dnnl::convolution_backward_weights::primitive_desc weights;

  const dnnl::primitive_desc& pd(Pass pass) const {
    return pass == Pass::data ? static_cast<const dnnl::primitive_desc&>(data) : weights;
  }
};

// How an entry lays out the primitive's tensors and what its timed call includes (above).
enum class Timing { reordered, native, plain };

BackwardDesc make_backward_desc(const ConvProblem& pr, Pass pass, algorithm alg, Timing timing) {
  const Shape sh(pr);
  // `plain`: the primitive on the caller's activation layouts; otherwise oneDNN chooses. The
  // weights stay `any` in both: with plain ohwi weights oneDNN 2.6.3 has no JIT kernel for NHWC
  // and falls back to its reference code (measured: 4-24 s a call on ResNet-50's res3/res4
  // layers at batch 8, against 6-14 ms), while reordering the weights costs little.
  const bool plain = timing == Timing::plain;
  const memory::desc x = plain ? sh.plain_x() : sh.any(sh.x), w = sh.any(sh.w),
                     y = plain ? sh.plain_y() : sh.any(sh.y),
                     b = plain ? sh.plain_b() : sh.any(sh.b);
  const dnnl::engine& engine = cpu_engine();
  // The scratchpad is ours (allocated once in plan()), so that its size can be reported as the
  // plan's workspace and no allocation happens in the timed call.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  // oneDNN's backward descriptors need a forward one as a hint to agree on layouts. The hint
  // only steers layouts, so where oneDNN has no forward `alg` for the shape a direct hint
  // stands in: whether the backward `alg` exists is then oneDNN's backward answer alone.
  const memory::desc no_bias;
  auto forward_hint = [&](algorithm hint_alg) {
    const dnnl::convolution_forward::desc fwd(dnnl::prop_kind::forward_training, hint_alg, x, w,
                                              pass == Pass::weights ? b : no_bias, y, sh.strides,
                                              sh.dilates, sh.pad_l, sh.pad_r);
    return dnnl::convolution_forward::primitive_desc(fwd, engine, /*allow_empty=*/true);
  };
  dnnl::convolution_forward::primitive_desc hint = forward_hint(alg);
  if (!hint) hint = forward_hint(algorithm::convolution_direct);
  BackwardDesc out;
  if (pass == Pass::data) {
    const dnnl::convolution_backward_data::desc d(alg, x, w, y, sh.strides, sh.dilates, sh.pad_l,
                                                  sh.pad_r);
    out.data = dnnl::convolution_backward_data::primitive_desc(d, attr, engine, hint);
  } else {
    const dnnl::convolution_backward_weights::desc d(alg, x, w, b, y, sh.strides, sh.dilates,
                                                     sh.pad_l, sh.pad_r);
    out.weights = dnnl::convolution_backward_weights::primitive_desc(d, attr, engine, hint);
  }
  return out;
}

// A defect convbp's validation found in oneDNN 2.6.3's Winograd (docs/onednn.md): the data pass
// of jit_wino_4x3 returns a wrong dx whenever top and bottom padding differ (wrong on all 32
// such shapes tried, right on all 32 with equal padding; left/right asymmetry is fine, and so
// is the weights pass). Keyed on the implementation oneDNN picked, so that `auto` is covered
// where it picks Winograd. Returns why, or "" when the plan can be trusted.
std::string known_defect(const ConvProblem& pr, Pass pass, const std::string& impl) {
  if (pass == Pass::data && impl.find("wino") != std::string::npos && pr.pad_top != pr.pad_bottom) {
    return "declined: oneDNN " + version_string() + "'s " + impl +
           " data pass gives a wrong dx when top and bottom padding differ (found by convbp's "
           "validation)";
  }
  return "";
}

void poison(const memory& m) {
  // All ones is a NaN in fp32, bf16 and f16 alike: an element never written fails validation.
  std::memset(m.get_data_handle(), 0xff, m.get_desc().get_size());
}

// One tensor the primitive reads or writes: `user` views convbp's plain host buffer, `lib` is
// the buffer in the primitive's layout, `reorder` converts between them (host to lib for an
// input, lib to host for an output).
struct Port {
  int arg = 0;  // DNNL_ARG_*
  const char* name = "";
  bool input = true;
  memory user, lib;
  bool converted = false;  // false: the primitive works on the host buffer itself
  dnnl::reorder reorder;
  Args reorder_args;
  const void* bound = nullptr;

  void bind(const void* host) {
    if (host == bound) return;
    user.set_data_handle(const_cast<void*>(host));
    bound = host;
  }
  void convert(dnnl::stream& stream) {
    if (converted) reorder.execute(stream, reorder_args);
  }
};

class OnednnPlan final : public Plan {
 public:
  OnednnPlan(const ConvProblem& pr, Pass pass, algorithm alg, Timing timing)
      : native_(timing == Timing::native),
        plain_(timing == Timing::plain),
        nhwc_(pr.layout == Layout::nhwc),
        dtype_(pr.dtype),
        stream_(cpu_engine()) {
    const Shape sh(pr);
    const BackwardDesc desc = make_backward_desc(pr, pass, alg, timing);
    const dnnl::primitive_desc& pd = desc.pd(pass);
    impl_ = pd.impl_info_str();
    if (std::string why = known_defect(pr, pass, impl_); !why.empty()) {
      throw std::runtime_error(why);
    }
    if (pass == Pass::data) {
      primitive_ = dnnl::convolution_backward_data(desc.data);
      add(DNNL_ARG_DIFF_DST, "dy", true, sh.plain_y(), desc.data.diff_dst_desc());
      add(DNNL_ARG_WEIGHTS, "w", true, sh.plain_w(), desc.data.weights_desc());
      add(DNNL_ARG_DIFF_SRC, "dx", false, sh.plain_x(), desc.data.diff_src_desc());
    } else {
      primitive_ = dnnl::convolution_backward_weights(desc.weights);
      add(DNNL_ARG_SRC, "x", true, sh.plain_x(), desc.weights.src_desc());
      add(DNNL_ARG_DIFF_DST, "dy", true, sh.plain_y(), desc.weights.diff_dst_desc());
      add(DNNL_ARG_DIFF_WEIGHTS, "dw", false, sh.plain_w(), desc.weights.diff_weights_desc());
      add(DNNL_ARG_DIFF_BIAS, "db", false, sh.plain_b(), desc.weights.diff_bias_desc());
    }
    const memory::desc scratch_md = pd.scratchpad_desc();
    scratchpad_bytes_ = scratch_md.get_size();
    if (scratchpad_bytes_ > 0) args_[DNNL_ARG_SCRATCHPAD] = memory(scratch_md, cpu_engine());
  }

  // The primitive's scratchpad. The plan owns it (oneDNN's JIT kernels expect the alignment
  // oneDNN allocates with), so the caller allocates none (backward.h's workspace contract).
  std::size_t workspace_bytes() const override { return scratchpad_bytes_; }
  std::size_t host_workspace_bytes() const override { return 0; }

  std::string detail() const override {
    std::string layouts;
    for (const Port& port : ports_) {
      if (!layouts.empty()) layouts += ' ';
      layouts += std::string(port.name) + ":" + layout_name(port.lib.get_desc());
    }
    // oneDNN names the ISA a kernel was generated for: a bf16 kernel for plain avx512_core
    // converts to fp32 and multiplies there (no VDPBF16PS), at about a third of native speed.
    const bool emulated = dtype_ == DType::bf16 && impl_.size() >= 12 &&
                          impl_.rfind(":avx512_core") == impl_.size() - 12;
    return impl_ + (emulated ? " (bf16 emulated in fp32: no avx512_bf16 instructions)" : "") +
           (native_  ? "; primitive alone on its layouts (reorders untimed)"
            : plain_ ? std::string("; primitive on the caller's ") + (nhwc_ ? "NHWC" : "NCHW") +
                           " activations, weights reordered (timed)"
                     : std::string("; ") + (nhwc_ ? "NHWC" : "NCHW") + " in/out, reorders timed") +
           "; " + layouts;
  }

  // .native times the primitive on its own layouts: the caller's plain tensors would need the
  // untimed reorders of upload() and download().
  bool runs_on_caller_memory() const override { return !native_; }
  void run_on(const Tensors& caller, void* workspace) override {
    if (native_) {
      throw std::logic_error(
          "a .native oneDNN plan works on its own layouts (reorders untimed): run it through "
          "upload(), run(), download()");
    }
    run(caller, workspace);
  }

  void upload(const Tensors& host) override {
    for (Port& port : ports_) {
      if (port.converted && !port.input) poison(port.lib);
    }
    copy_inputs(host);
  }

  // upload() without the poisoning of the converted outputs (TunedPlan::run).
  void copy_inputs(const Tensors& host) override {
    if (!native_) return;
    for (Port& port : ports_) {
      if (!port.input) continue;
      port.bind(host_pointer(host, port));
      port.convert(stream_);
    }
    stream_.wait();
  }

  void run(const Tensors& host, void* /*workspace*/) override {
    if (native_) {
      primitive_.execute(stream_, args_);
      stream_.wait();
      return;
    }
    for (Port& port : ports_) {
      port.bind(host_pointer(host, port));
      if (port.input) port.convert(stream_);
    }
    primitive_.execute(stream_, args_);
    for (Port& port : ports_) {
      if (!port.input) port.convert(stream_);
    }
    stream_.wait();
  }

  void download(const Tensors& host) override {
    if (!native_) return;
    for (Port& port : ports_) {
      if (port.input) continue;
      port.bind(host_pointer(host, port));
      port.convert(stream_);
    }
    stream_.wait();
  }

 private:
  void add(int arg, const char* name, bool input, const memory::desc& plain,
           const memory::desc& chosen) {
    Port port;
    port.arg = arg;
    port.name = name;
    port.input = input;
    port.user = memory(plain, cpu_engine(), DNNL_MEMORY_NONE);
    // .native always keeps its own copy: run() must not touch the host buffers. The NCHW entry
    // works on the host buffer directly when oneDNN chose the plain layout anyway.
    port.converted = native_ || chosen != plain;
    if (port.converted) {
      port.lib = memory(chosen, cpu_engine());
      const memory& from = input ? port.user : port.lib;
      const memory& to = input ? port.lib : port.user;
      port.reorder = dnnl::reorder(from, to);
      port.reorder_args = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    } else {
      port.lib = port.user;
    }
    args_[arg] = port.lib;
    ports_.push_back(std::move(port));
  }

  static const void* host_pointer(const Tensors& t, const Port& port) {
    switch (port.arg) {
      case DNNL_ARG_SRC:
        return t.x;
      case DNNL_ARG_WEIGHTS:
        return t.w;
      case DNNL_ARG_DIFF_DST:
        return t.dy;
      case DNNL_ARG_DIFF_SRC:
        return t.dx;
      case DNNL_ARG_DIFF_WEIGHTS:
        return t.dw;
      default:
        return t.db;
    }
  }

  bool native_;
  bool plain_;
  bool nhwc_;
  DType dtype_;
  dnnl::stream stream_;
  dnnl::primitive primitive_;
  std::vector<Port> ports_;
  Args args_;
  std::size_t scratchpad_bytes_ = 0;
  std::string impl_;
};

class OnednnBackward final : public Backward {
 public:
  OnednnBackward(algorithm alg, Timing timing)
      : alg_(alg),
        timing_(timing),
        name_(std::string("onednn.") + algorithm_name(alg) +
              (timing == Timing::native  ? ".native"
               : timing == Timing::plain ? ".plain"
                                         : "")) {}

  std::string name() const override { return name_; }

  // oneDNN's own choice on NCHW tensors (reorders timed), everywhere, is a network-total
  // strategy: what a framework that hands oneDNN its NCHW tensors and lets it pick runs.
  std::string strategy() const override {
    return alg_ == algorithm::convolution_auto && timing_ == Timing::reordered ? "onednn.auto" : "";
  }

  Support available() const override {
    try {
      cpu_engine();
    } catch (const dnnl::error& e) {
      return Support::no(std::string("oneDNN has no CPU engine: ") + e.what());
    }
    return Support::yes();
  }

  // Asks oneDNN itself: the primitive descriptor is what decides, and creating one is cheap
  // (the JIT code is generated only when the primitive is made, in plan()).
  Support supports(const ConvProblem& problem, Pass pass) const override {
    try {
      const BackwardDesc desc = make_backward_desc(problem, pass, alg_, timing_);
      std::string why = known_defect(problem, pass, desc.pd(pass).impl_info_str());
      if (!why.empty()) return Support::no(std::move(why));
    } catch (const dnnl::error& e) {
      if (std::string why = missing_kernel(problem); !why.empty()) return Support::no(why);
      return Support::no("oneDNN " + version_string() + " on " + effective_isa() + " has no " +
                         to_string(problem.dtype) + " " + algorithm_name(alg_) + " " +
                         to_string(pass) + "-pass convolution for this shape (oneDNN: '" +
                         e.what() + "', status " + status_name(e.status) + ")");
    }
    return Support::yes();
  }

  std::unique_ptr<Plan> plan(const ConvProblem& problem, Pass pass) const override {
    return std::make_unique<OnednnPlan>(problem, pass, alg_, timing_);
  }

  // Winograd F(4x4, 3x3) rounds more than direct summation: its input and output transforms
  // multiply by constants above 1 around the fp32 products. Measured on ResNet-50's 3x3 layers
  // at batch 8 (docs/onednn.md), its worst element error is 5-10x direct's on the data pass
  // (about direct's on the weights pass) yet at most 0.10 of the factor-1 bound, so a factor of
  // 2 keeps a 20x margin. `auto` may pick Winograd (it does for the weights pass of res4/res5
  // on AVX-512) and, not knowing the shape here, shares the factor.
  double tolerance_factor(Pass /*pass*/) const override {
    return alg_ == algorithm::convolution_direct ? 1.0 : 2.0;
  }

  std::vector<std::pair<std::string, std::string>> library_versions() const override {
    return {{"onednn", version_string() + " (" + effective_isa() + ")"}};
  }

 private:
  algorithm alg_;
  Timing timing_;
  std::string name_;
};

}  // namespace

std::vector<std::unique_ptr<Backward>> make_onednn_backwards() {
  std::vector<std::unique_ptr<Backward>> list;
  for (Timing timing : {Timing::reordered, Timing::native}) {
    for (algorithm alg : {algorithm::convolution_direct, algorithm::convolution_auto,
                          algorithm::convolution_winograd}) {
      list.push_back(std::make_unique<OnednnBackward>(alg, timing));
    }
  }
  list.push_back(std::make_unique<OnednnBackward>(algorithm::convolution_direct, Timing::plain));
  return list;
}

}  // namespace convbp
