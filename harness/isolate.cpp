#include "isolate.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <thread>

namespace convbp {

namespace {

using Clock = std::chrono::steady_clock;

// The exit status of a child whose work threw: it has no answer to send.
constexpr int kWorkThrew = 70;

bool write_all(int fd, const std::string& text) {
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += std::size_t(n);
  }
  return true;
}

[[noreturn]] void child_main(const std::function<std::string()>& work, int read_fd, int write_fd,
                             pid_t parent) {
  // A parent killed outright (SIGKILL, out of memory) takes its child with it, instead of leaving
  // it measuring for nobody.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kWorkThrew);
  ::close(read_fd);
  std::string answer;
  try {
    answer = work();
  } catch (...) {
    ::_exit(kWorkThrew);
  }
  ::_exit(write_all(write_fd, answer) ? 0 : kWorkThrew);
}

// Waits up to `until` for `pid` to end, with its wait status in `status`; false when it has not
// ended by then. (A child reaped by someone else, SIGCHLD ignored, reads as exited with 0.)
bool reap(pid_t pid, Clock::time_point until, int& status) {
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more: nothing to wait for
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::string signal_name(int signal) {
  if (const char* abbrev = ::sigabbrev_np(signal)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signal);
}

namespace {

// run_in_child on the thread that forks. That thread stays until the child has ended: the
// child's PR_SET_PDEATHSIG fires when the thread that forked it ends, not the process.
ChildOutcome fork_and_wait(const std::function<std::string()>& work, double timeout_seconds,
                           const std::atomic<bool>* stop) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("cannot isolate: pipe failed: ") + std::strerror(errno));
  }
  // What the parent buffered must not be written again by the child (it never flushes, but a
  // library in it might).
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) child_main(work, fds[0], fds[1], parent);
  const int fork_errno = errno;
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    throw std::runtime_error(std::string("cannot isolate: fork failed: ") +
                             std::strerror(fork_errno));
  }

  const auto start = Clock::now();
  const bool limited = timeout_seconds > 0;
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(limited ? timeout_seconds : 0.0));
  ChildOutcome outcome;
  auto give_up = [&](ChildOutcome::Ending ending) {
    ::close(fds[0]);
    kill_and_reap(pid);
    outcome.ending = ending;
    outcome.answer.clear();
    if (ending == ChildOutcome::Ending::timed_out) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "no result within %g s: killed", timeout_seconds);
      outcome.why = buf;
    }
    return outcome;
  };
  // Read until the child closes the pipe (it exits), checking the stop flag at least every
  // 100 ms; a signal that raises it interrupts poll at once.
  char buf[65536];
  for (;;) {
    if (stop && stop->load()) return give_up(ChildOutcome::Ending::stopped);
    int wait_ms = 100;
    if (limited) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return give_up(ChildOutcome::Ending::timed_out);
      wait_ms = int(std::min<long long>(wait_ms, left));
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, wait_ms);
    if (ready < 0 && errno != EINTR) {
      const std::string reason = std::strerror(errno);
      give_up(ChildOutcome::Ending::crashed);
      throw std::runtime_error("cannot isolate: poll failed: " + reason);
    }
    if (ready <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of file: the child exited (or closed the pipe and is exiting)
    outcome.answer.append(buf, std::size_t(n));
  }
  ::close(fds[0]);
  int status = 0;
  if (!reap(pid, limited ? deadline : Clock::time_point::max(), status)) {
    kill_and_reap(pid);
    outcome.ending = ChildOutcome::Ending::timed_out;
    outcome.answer.clear();
    char why[96];
    std::snprintf(why, sizeof why, "no exit within %g s: killed", timeout_seconds);
    outcome.why = why;
    return outcome;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return outcome;
  outcome.ending = ChildOutcome::Ending::crashed;
  outcome.answer.clear();
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    outcome.why = "killed by " + signal_name(sig) + " (" + ::strsignal(sig) + ")";
  } else if (WIFEXITED(status)) {
    outcome.why =
        "exited with status " + std::to_string(WEXITSTATUS(status)) + " without a result" +
        (WEXITSTATUS(status) == kWorkThrew ? " (an exception escaped, or the pipe failed)" : "");
  } else {
    outcome.why = "ended without a result (wait status " + std::to_string(status) + ")";
  }
  return outcome;
}

}  // namespace

ChildOutcome run_in_child(const std::function<std::string()>& work, double timeout_seconds,
                          const std::atomic<bool>* stop) {
  // A new thread forks (isolate.h: libgomp's pool belongs to the threads that used it).
  ChildOutcome outcome;
  std::exception_ptr failure;
  std::thread forker([&] {
    try {
      outcome = fork_and_wait(work, timeout_seconds, stop);
    } catch (...) {
      failure = std::current_exception();
    }
  });
  forker.join();
  if (failure) std::rethrow_exception(failure);
  return outcome;
}

}  // namespace convbp
