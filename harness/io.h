// Files and the words about them that reports, dumps and tuning databases share: whole-file
// reads that know which version they read, atomic writes (temp file, fsync, rename), an advisory
// lock, the checks on a path convbp will write, UTC timestamps and byte counts.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

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

// The most read_file reads (a read of up to three times this may need memory as the string
// grows): suites, reports, databases and PyTorch's timings are far smaller.
inline constexpr std::size_t kMaxInputBytes = std::size_t(256) << 20;

// The whole content of the file at `path`, and in `version` (when given) the version of the very
// file read (its descriptor's fstat): another process may replace the file at any moment, and a
// version taken by path before or after the read could belong to another content. Throws
// std::system_error with errno's reason when the file cannot be opened or read, and EFBIG
// ("larger than 256 MiB, the most convbp reads") past kMaxInputBytes, checked as it reads (so
// that /dev/zero or a FIFO that never ends stops there).
std::string read_file(const std::string& path, FileVersion* version = nullptr);

// Writes to a temp file in the same directory, flushes it to the disk and renames it over
// `path`, so a file that exists is always complete. A symbolic link at `path` is followed: the
// file it names is replaced, the link stays. Throws std::runtime_error with the reason.
void write_json_atomic(const std::string& path, const nlohmann::json& doc);

// Before measuring: that write_json_atomic can write `path`: a UTF-8 name, not empty, in an
// existing folder that takes its temp file; what is there now (through a link) a regular file
// or nothing, never a folder, device, FIFO or socket, which a rename would replace. With
// `replaces` ("convbp.report/1"), a file there must also be empty or a JSON document of that
// schema: convbp never replaces a tuning database, a suite or anything else with a report.
// Throws std::runtime_error with the reason.
void check_writable(const std::string& path, const char* replaces = nullptr);

// Whether two paths name one file: the same file where both exist, else the same path once
// links (a dangling one too, as write_json_atomic follows it), "." and ".." are resolved.
bool same_file(const std::string& a, const std::string& b);

// The file a write to `path` replaces: `path`, or the file a symbolic link there leads to,
// through every link of a chain, existing or not. Locks (FILE.lock) are taken on this name, so
// that writers through a link and through the file share one.
std::string resolve_links(const std::string& path);

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
// `t` in the same form (utc_now() is utc_date(now)).
std::string utc_date(std::time_t t);

// "1.5 MiB", "512 B".
std::string format_bytes(std::size_t bytes);
// The decimal number `text` starts with, as the docs write numbers: digits with an optional
// fraction and exponent; no sign, space, hex, inf or nan. `used` receives how many characters
// it took. nullopt where `text` does not start with one.
std::optional<double> parse_decimal_prefix(std::string_view text, std::size_t* used);

// "1048576", "64K", "1.5M", "2G" (powers of 1024) -> bytes; nullopt if malformed: anything
// but a decimal number (no sign, space or hex) and an optional unit, or a number of bytes that
// is not whole ("1.5", "0.3K").
std::optional<std::size_t> parse_bytes(const std::string& text);

}  // namespace convbp
