// Files and the words about them that reports, dumps and tuning databases share: whole-file
// reads that know which version they read, atomic writes (temp file, fsync, rename), an advisory
// lock, the checks on a path convbp will write, UTC timestamps and byte counts.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace convbp {

// Identity of one version of a file. convbp never changes a file in place (it renames a new one
// over it), so a version stands for one content.
struct FileVersion {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  long mtime_ns = 0;
  bool operator==(const FileVersion&) const = default;
};

// The version now at `path` ({} when there is none).
FileVersion file_version(const std::string& path);

// The whole content of the file at `path`, and in `version` (when given) the version of the very
// file read (its descriptor's fstat): another process may replace the file at any moment, and a
// version taken by path before or after the read could belong to another content. Throws
// std::system_error with errno's reason when the file cannot be opened or read.
std::string read_file(const std::string& path, FileVersion* version = nullptr);

// Writes to a temp file in the same directory, flushes it to the disk and renames it over
// `path`, so a file that exists is always complete. Throws std::runtime_error with the reason.
void write_json_atomic(const std::string& path, const nlohmann::json& doc);

// Before measuring: that write_json_atomic can write `path` (a UTF-8 name, an existing folder
// that takes its temp file, not a folder itself). Throws std::runtime_error with the reason.
void check_writable(const std::string& path);

// A folder convbp writes files into (--dump): created if missing, and proved to take a file
// named `probe` (check_writable). Throws std::runtime_error with the reason.
void prepare_output_folder(const std::string& dir, const std::string& probe);

// An exclusive flock on `path` (created if missing) for the lifetime of the object. The lock file
// stays: removing it would let a third process lock a new inode while the second still holds the
// old one. Throws std::runtime_error when the file cannot be opened or locked.
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Now, in UTC: "2024-05-01T12:00:00Z".
std::string utc_now();

// "1.5 MiB", "512 B".
std::string format_bytes(std::size_t bytes);
// "1048576", "64K", "1.5M", "2G" (powers of 1024) -> bytes; nullopt if malformed.
std::optional<std::size_t> parse_bytes(const std::string& text);

}  // namespace convbp
