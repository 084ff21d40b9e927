// The tests that check convbp's command line from outside: run the built binary through the
// shell and collect its exit status and its output (stdout and stderr together).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace convbp::test {

struct Outcome {
  int status;          // the exit status; -1 when killed by a signal
  std::string output;  // stdout and stderr
};

// Runs the convbp binary (CONVBP_BINARY) with `args` (shell words), with `env` (`env` words:
// VAR=value, -u VAR) in front of it when given.
inline Outcome run_convbp(const std::string& args, const std::string& env = "") {
  const std::string command =
      (env.empty() ? "" : "env " + env + " ") + std::string(CONVBP_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) output.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace convbp::test
