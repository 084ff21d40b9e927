// Minimal writer of NumPy .npy files (format version 1.0), for --dump.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convbp {

void write_npy(const std::string& path, const float* data, const std::vector<std::int64_t>& shape);
void write_npy(const std::string& path, const double* data, const std::vector<std::int64_t>& shape);
// 16-bit elements under a NumPy type: "<f2" (fp16), or "<u2" for bf16's bit patterns (NumPy
// has no bf16).
struct NpyHalf {
  const void* data;
  const char* descr;
};
void write_npy(const std::string& path, const NpyHalf& data,
               const std::vector<std::int64_t>& shape);

// The descr of an .npy file ("<f4", "<u2", ...) and its shape (for tests).
std::string read_npy_descr(const std::string& path, std::vector<std::int64_t>* shape);

// Reads back a little-endian float32 .npy written by write_npy (for tests); shape out.
std::vector<float> read_npy_f32(const std::string& path, std::vector<std::int64_t>* shape);

}  // namespace convbp
