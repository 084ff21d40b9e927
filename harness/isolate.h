// Running one piece of work in a child process, so that a crash or a hang in it cannot take the
// caller with it (docs/isolation.md).
#pragma once

#include <atomic>
#include <functional>
#include <string>

namespace convbp {

struct ChildOutcome {
  enum class Ending {
    answered,   // the child returned from its work and exited with status 0
    crashed,    // a signal killed it, or it exited another way (`why` says how)
    timed_out,  // no answer within the time limit: killed with SIGKILL
    stopped,    // the caller's stop flag was raised while waiting: killed with SIGKILL
  };
  Ending ending = Ending::answered;
  std::string answer;  // what the work returned (answered)
  std::string why;     // for crashed and timed_out: "killed by SIGSEGV (Segmentation fault)"
};

// Forks a child that runs `work` and sends its returned string back over a pipe, and waits for
// it at most `timeout_seconds` (<= 0: no limit). The child sees the caller's memory as it was at
// the fork (copy-on-write), writes nothing back to it, and ends with _exit: no atexit handlers,
// no stdio buffers flushed twice.
//
// The fork happens on a new thread, never on the caller's: GNU libgomp keeps its thread pool per
// thread that started a parallel region, and a child forked from such a thread finds the pool's
// threads gone and waits for them forever at its first parallel region. A new thread has no
// pool, so the child builds its own. OpenMP's per-thread settings (omp_set_num_threads) are
// not that thread's either: `work` must set them again.
//
// Nothing in the child may use CUDA: a CUDA context does not survive fork.
ChildOutcome run_in_child(const std::function<std::string()>& work, double timeout_seconds,
                          const std::atomic<bool>* stop = nullptr);

// "SIGSEGV" for SIGSEGV; "signal 77" for a number without a name.
std::string signal_name(int signal);

}  // namespace convbp
