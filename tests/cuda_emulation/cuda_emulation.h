// CUDA's thread model on the host, enough to run a simple kernel's own source (its .cu compiled
// as C++; db_kernel_on_host.cpp shows how): the blocks of a one-dimensional grid one after
// another; the threads of a block as fibers (ucontext) on the calling thread, each running until
// it reaches a barrier or ends; __syncthreads() as a barrier of all the block's threads; and
// __shfl_down_sync as an exchange among a warp's 32 threads between two barriers of that warp.
// Deterministic: between barriers, the threads of even blocks run in order of threadIdx.x and
// those of odd blocks in the reverse order, so that a missing barrier between a write and a
// read in another thread shows whichever of the two the kernel's order favours.
//
// It proves a kernel's indexing, its guards and its combine across threads and warps on the
// machines without a GPU. It proves nothing about the GPU's memory model, its scheduling or its
// speed. It is stricter than a GPU in one way: every thread of a block must reach each
// barrier. A thread that returns while others wait at __syncthreads() (undefined on a GPU), or
// threads waiting at different barriers, are reported with the block and the barriers, and the
// process exits with status 3.
//
// The file that includes the kernel defines __shared__ as `static` before any CUDA header, so a
// kernel's shared array is one per kernel function; the blocks, run one at a time, take turns
// with it (it starts as zeros, not as a GPU's leftovers). One launch at a time per OS thread.
#pragma once

#include <cuda_runtime_api.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

// AddressSanitizer is told of each switch between stacks: GCC says it is on with
// __SANITIZE_ADDRESS__, clang with __has_feature(address_sanitizer).
#if defined(__SANITIZE_ADDRESS__)
#define CUDA_EMULATION_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDA_EMULATION_ASAN 1
#endif
#endif
#ifndef CUDA_EMULATION_ASAN
#define CUDA_EMULATION_ASAN 0
#endif
#if CUDA_EMULATION_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace cuda_emulation {

[[noreturn]] inline void fatal(const char* message, unsigned block) {
  std::fprintf(stderr, "cuda_emulation: block %u: %s\n", block, message);
  std::fflush(stderr);
  std::_Exit(3);
}

struct Fiber;

// A barrier of `count` threads: reusable, released once all of them wait at it.
// `line`: the source line of the call, where it has one (__syncthreads): every thread must wait
// at the same call, as a GPU requires; threads at two different calls are reported.
struct Barrier {
  Barrier(unsigned count_, const char* what_) : count(count_), what(what_) {}
  void wait(int line = 0);
  const unsigned count;
  const char* what;
  unsigned arrived = 0;
  int line = 0;  // of the first thread waiting now
};

struct Warp {
  Barrier barrier{32, "a warp shuffle"};
  float lanes[32] = {};
};

// What the kernel sees as threadIdx, blockIdx, blockDim and gridDim.
struct ThreadContext {
  uint3 thread{}, block{};
  dim3 block_dim, grid_dim;
};

struct Fiber {
  ucontext_t context{};
  unsigned thread = 0;
  bool finished = false;
  Barrier* waiting_at = nullptr;
  void* fake_stack = nullptr;  // AddressSanitizer's, across switches
};

// The launch in progress on this OS thread: its fibers, its barriers, and the one running.
class Scheduler {
 public:
  static constexpr std::size_t kStackBytes = 256 * 1024;

  Scheduler(dim3 grid, dim3 block) : grid_(grid), block_(block), sync_(block.x, "__syncthreads()") {
    for (unsigned w = 0; w < block.x / 32; ++w) warps_.push_back(std::make_unique<Warp>());
    stacks_bytes_ = kStackBytes * block.x;
    void* m = mmap(nullptr, stacks_bytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) fatal("mmap of the fibers' stacks failed", 0);
    stacks_ = static_cast<unsigned char*>(m);
    fibers_.resize(block.x);
  }
  ~Scheduler() { munmap(stacks_, stacks_bytes_); }
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  static Scheduler*& active() {
    static thread_local Scheduler* s = nullptr;
    return s;
  }
  ThreadContext& context() { return context_; }
  Barrier& sync() { return sync_; }
  Warp& warp(unsigned thread) { return *warps_[thread / 32]; }

  // Runs `body` as every thread of block `b`, to the end of each.
  template <class Body>
  void run_block(unsigned b, Body& body) {
    body_ = &body;
    call_ = [](void* f) { (*static_cast<Body*>(f))(); };
    for (unsigned t = 0; t < block_.x; ++t) prepare(fibers_[t], t);
    for (;;) {
      bool ran = false, all_finished = true;
      for (unsigned i = 0; i < block_.x; ++i) {
        Fiber& f = fibers_[b % 2 == 0 ? i : block_.x - 1 - i];
        if (f.finished) continue;
        if (f.waiting_at == nullptr) {
          resume(f, b);
          ran = true;
        }
        all_finished = all_finished && f.finished;
      }
      if (all_finished) return;
      bool released = release(sync_);
      for (auto& w : warps_) released = release(w->barrier) || released;
      if (!ran && !released) stuck(b);
    }
  }

  // Called by a fiber at a barrier: back to the scheduler until the barrier releases it.
  void yield(Barrier& at) {
    Fiber& f = *running_;
    f.waiting_at = &at;
    ++at.arrived;
    switch_to_main(f);
  }

 private:
  // getcontext returns twice, as setjmp does: kept out of run_block's loop, whose locals the
  // compiler could not otherwise keep in registers.
  [[gnu::noinline]] void prepare(Fiber& f, unsigned t) {
    f = Fiber{};
    f.thread = t;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = stacks_ + kStackBytes * t;
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &main_;
    makecontext(&f.context, &Scheduler::entry, 0);
  }
  static void entry() {
    Scheduler& s = *active();
    Fiber& f = *s.running_;
    s.finish_switch(f);
    s.call_(s.body_);
    f.finished = true;
#if CUDA_EMULATION_ASAN
    __sanitizer_start_switch_fiber(nullptr, s.main_bottom_, s.main_size_);  // the fiber ends
#endif
  }  // returns to uc_link, the scheduler

  void resume(Fiber& f, unsigned b) {
    running_ = &f;
    context_ = {uint3{f.thread, 0, 0}, uint3{b, 0, 0}, block_, grid_};
#if CUDA_EMULATION_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, stacks_ + kStackBytes * f.thread, kStackBytes);
#endif
    swapcontext(&main_, &f.context);
#if CUDA_EMULATION_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    running_ = nullptr;
  }
  void switch_to_main(Fiber& f) {
#if CUDA_EMULATION_ASAN
    __sanitizer_start_switch_fiber(&f.fake_stack, main_bottom_, main_size_);
#endif
    swapcontext(&f.context, &main_);
    finish_switch(f);
  }
  void finish_switch([[maybe_unused]] Fiber& f) {
#if CUDA_EMULATION_ASAN
    __sanitizer_finish_switch_fiber(f.fake_stack, &main_bottom_, &main_size_);
#endif
  }
  bool release(Barrier& barrier) {
    if (barrier.arrived == 0 || barrier.arrived < barrier.count) return false;
    for (Fiber& f : fibers_) {
      if (f.waiting_at == &barrier) f.waiting_at = nullptr;
    }
    barrier.arrived = 0;
    return true;
  }
  [[noreturn]] void stuck(unsigned b) {
    unsigned finished = 0;
    const Fiber* waiting = nullptr;
    for (const Fiber& f : fibers_) {
      finished += f.finished;
      if (waiting == nullptr && f.waiting_at != nullptr) waiting = &f;
    }
    std::fprintf(stderr,
                 "cuda_emulation: block %u: no thread can go on, they disagree on the barriers "
                 "they reach: %u of %u threads have returned, thread %u waits at %s (%u of %u "
                 "there)\n",
                 b, finished, block_.x, waiting->thread, waiting->waiting_at->what,
                 waiting->waiting_at->arrived, waiting->waiting_at->count);
    std::fflush(stderr);
    std::_Exit(3);
  }

  dim3 grid_, block_;
  Barrier sync_;
  std::vector<std::unique_ptr<Warp>> warps_;
  std::vector<Fiber> fibers_;
  unsigned char* stacks_ = nullptr;
  std::size_t stacks_bytes_ = 0;
  ucontext_t main_{};
  Fiber* running_ = nullptr;
  ThreadContext context_;
  void* body_ = nullptr;
  void (*call_)(void*) = nullptr;
  const void* main_bottom_ = nullptr;
  std::size_t main_size_ = 0;
};

inline ThreadContext& current() { return Scheduler::active()->context(); }

inline void Barrier::wait(int at_line) {
  if (arrived == 0) {
    line = at_line;
  } else if (at_line != line) {
    std::fprintf(stderr,
                 "cuda_emulation: block %u: thread %u waits at %s on line %d while %u other "
                 "threads wait at the one on line %d\n",
                 current().block.x, current().thread.x, what, at_line, arrived, line);
    std::fflush(stderr);
    std::_Exit(3);
  }
  Scheduler::active()->yield(*this);
}

inline void sync_threads(int line) { Scheduler::active()->sync().wait(line); }

inline float shfl_down_sync(unsigned mask, float v, unsigned delta, int width = 32) {
  const unsigned thread = current().thread.x;
  if (mask != 0xffffffffu || width != 32) {
    fatal("only full-warp shuffles are modelled (mask 0xffffffff, width 32)", current().block.x);
  }
  Warp& warp = Scheduler::active()->warp(thread);
  const unsigned lane = thread % 32;
  warp.lanes[lane] = v;
  warp.barrier.wait();
  const float out = lane + delta < 32 ? warp.lanes[lane + delta] : v;
  warp.barrier.wait();  // every lane has read before the next shuffle writes
  return out;
}

// Each launch's configuration, for tests of the launch arithmetic.
struct Launch {
  dim3 grid, block;
};
inline std::vector<Launch>& launches() {
  static thread_local std::vector<Launch> all;
  return all;
}

// Runs body() as every thread of every block of the grid; returns when all are done. A
// configuration the GPU would refuse gets its error (cudaErrorInvalidConfiguration); one the
// emulation does not model (a grid or block in more than one dimension, a block that is not a
// whole number of warps) exits with a message.
template <class Body>
cudaError_t launch(dim3 grid, dim3 block, Body body) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0 ||
      block.x * block.y * block.z > 1024) {
    return cudaErrorInvalidConfiguration;
  }
  if (grid.y != 1 || grid.z != 1 || block.y != 1 || block.z != 1 || block.x % 32 != 0) {
    fatal("only one-dimensional grids of whole warps are modelled", 0);
  }
  if (Scheduler::active() != nullptr) fatal("a launch from inside a launch", 0);
  launches().push_back({grid, block});
  Scheduler scheduler(grid, block);
  Scheduler::active() = &scheduler;
  for (unsigned b = 0; b < grid.x; ++b) scheduler.run_block(b, body);
  Scheduler::active() = nullptr;
  return cudaSuccess;
}

}  // namespace cuda_emulation
