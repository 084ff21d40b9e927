// Shared by the fuzz targets: the input as a file, since convbp's readers take paths (that is
// the code a user's bad file meets), and a check that stops the target with a message.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace convbp::fuzz {

// Writes the input to a file private to this process and returns its path.
inline std::string as_file(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/convbp-fuzz-" + std::to_string(::getpid()) + ".json";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// A property that must hold: a finding when it does not.
inline void check(bool ok, const char* what, const std::string& detail) {
  if (ok) return;
  std::fprintf(stderr, "fuzz finding: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace convbp::fuzz
