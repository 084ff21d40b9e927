#include "npy.h"

#include <cstring>
#include <fstream>
#include <stdexcept>

namespace convbp {
namespace {

void write_bytes(const std::string& path, const void* data, std::size_t element_bytes,
                 const std::vector<std::int64_t>& shape, const char* descr) {
  std::string dims;
  std::int64_t count = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    dims += (i ? ", " : "") + std::to_string(shape[i]);
    count *= shape[i];
  }
  if (shape.size() == 1) dims += ",";  // a 1-tuple: "(5,)"
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error(path + ": cannot write");
  out.write("\x93NUMPY\x01\x00", 8);
  const std::uint16_t length = std::uint16_t(header.size());
  const char le[2] = {char(length & 0xff), char(length >> 8)};
  out.write(le, 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(static_cast<const char*>(data), std::streamsize(std::size_t(count) * element_bytes));
  if (!out) throw std::runtime_error(path + ": write failed");
}

template <typename T>
void write(const std::string& path, const T* data, const std::vector<std::int64_t>& shape,
           const char* descr) {
  write_bytes(path, data, sizeof(T), shape, descr);
}

// The header of an .npy file: its descr and shape; `in` is left at the data.
std::string read_header(std::ifstream& in, const std::string& path,
                        std::vector<std::int64_t>* shape, std::int64_t* count) {
  char magic[10];
  if (!in.read(magic, 10) || std::memcmp(magic, "\x93NUMPY\x01\x00", 8) != 0) {
    throw std::runtime_error(path + ": not a version-1 .npy file");
  }
  const std::size_t length = std::uint8_t(magic[8]) | (std::uint8_t(magic[9]) << 8);
  std::string header(length, '\0');
  in.read(header.data(), std::streamsize(length));
  const auto descr_at = header.find("'descr': '") + 10;
  const std::string descr = header.substr(descr_at, header.find('\'', descr_at) - descr_at);
  const auto open = header.find("'shape': (") + 10, close = header.find(')', open);
  shape->clear();
  *count = 1;
  for (std::size_t pos = open; pos < close;) {
    std::size_t next = header.find(',', pos);
    if (next == std::string::npos || next > close) next = close;
    const std::string token = header.substr(pos, next - pos);
    if (token.find_first_of("0123456789") != std::string::npos) {
      shape->push_back(std::stoll(token));
      *count *= shape->back();
    }
    pos = next + 1;
  }
  return descr;
}

}  // namespace

void write_npy(const std::string& path, const float* data, const std::vector<std::int64_t>& shape) {
  write(path, data, shape, "<f4");
}

void write_npy(const std::string& path, const double* data,
               const std::vector<std::int64_t>& shape) {
  write(path, data, shape, "<f8");
}

void write_npy(const std::string& path, const NpyHalf& data,
               const std::vector<std::int64_t>& shape) {
  write_bytes(path, data.data, 2, shape, data.descr);
}

std::string read_npy_descr(const std::string& path, std::vector<std::int64_t>* shape) {
  std::ifstream in(path, std::ios::binary);
  std::int64_t count = 0;
  return read_header(in, path, shape, &count);
}

std::vector<float> read_npy_f32(const std::string& path, std::vector<std::int64_t>* shape) {
  std::ifstream in(path, std::ios::binary);
  std::int64_t count = 0;
  if (read_header(in, path, shape, &count) != "<f4") {
    throw std::runtime_error(path + ": not float32");
  }
  std::vector<float> data(count);
  in.read(reinterpret_cast<char*>(data.data()), std::streamsize(count * sizeof(float)));
  if (!in) throw std::runtime_error(path + ": truncated data");
  return data;
}

}  // namespace convbp
