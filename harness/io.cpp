#include "io.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "json_input.h"

namespace convbp {

namespace fs = std::filesystem;

namespace {

FileVersion version_of(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size,
          long(st.st_mtim.tv_sec) * 1000000000L + st.st_mtim.tv_nsec};
}

fs::path folder_of(const fs::path& target) {
  return target.has_parent_path() ? target.parent_path() : fs::path(".");
}

// The temp file write_json_atomic writes before renaming it over the target.
fs::path temp_of(const fs::path& target) {
  // Appending (rather than chaining operator+) keeps GCC 12's -Wrestrict false positive away.
  std::string name = ".";
  name += target.filename().string();
  name += ".tmp.";
  name += std::to_string(::getpid());
  return folder_of(target) / name;
}

// The folder a file is written into must exist: "NAME: cannot write: directory D does not exist".
void require_folder_of(const fs::path& target, const std::string& name) {
  const fs::path dir = folder_of(target);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error(name + ": cannot write: directory " + printable(dir.string()) +
                             " does not exist" + (ec ? " (" + ec.message() + ")" : ""));
  }
}

// Reports, dumps and databases record the paths they were given in JSON, which must be UTF-8.
void require_utf8(const std::string& path) {
  if (!is_utf8(path)) {
    throw std::runtime_error(printable(path) +
                             ": the path is not valid UTF-8 (convbp records it in JSON)");
  }
}

}  // namespace

FileVersion file_version(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return version_of(st);
}

std::string read_file(const std::string& path, FileVersion* version) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category());
  struct stat st {};
  std::string content;
  bool read_ok = ::fstat(fd, &st) == 0;
  for (char buf[65536]; read_ok;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      read_ok = n == 0;
      break;
    }
    content.append(buf, std::size_t(n));
  }
  const int error = errno;
  ::close(fd);
  if (!read_ok) throw std::system_error(error, std::generic_category());
  if (version) *version = version_of(st);
  return content;
}

void check_writable(const std::string& path) {
  const fs::path target(path);
  const std::string name = printable(path);
  require_utf8(path);
  require_folder_of(target, name);
  std::error_code ec;
  if (target.filename().empty() || fs::is_directory(target, ec)) {
    throw std::runtime_error(name + ": cannot write: a directory, not a file name");
  }
  // Creating (and removing) the temp file proves the name's length and the folder's
  // permissions the way the real write will meet them.
  const fs::path temp = temp_of(target);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    if (error != EEXIST) throw std::runtime_error(name + ": cannot write: " + std::strerror(error));
    return;  // left by this process id before: the write replaces it
  }
  ::close(fd);
  ::unlink(temp.c_str());
}

void prepare_output_folder(const std::string& dir, const std::string& probe) {
  const std::string name = printable(dir);
  require_utf8(dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(name + ": cannot create the folder: " + ec.message());
  if (!fs::is_directory(dir, ec)) throw std::runtime_error(name + ": not a folder");
  check_writable((fs::path(dir) / probe).string());
}

void write_json_atomic(const std::string& path, const nlohmann::json& doc) {
  const fs::path target(path);
  const fs::path dir = folder_of(target);
  require_folder_of(target, printable(path));
  const fs::path temp = temp_of(target);
  const std::string text = doc.dump(1) + "\n";
  // Written, flushed to the disk, renamed over the target, and the directory flushed too: after
  // a power loss the file is the old one or the new one, never empty.
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error(path + ": cannot write: " + temp.string() + ": " +
                             std::strerror(errno));
  }
  std::error_code ec;
  auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    fs::remove(temp, ec);
    throw std::runtime_error(path + ": " + what + ": " + reason);
  };
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write failed");
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    fs::remove(temp, ec);
    throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
  }
  fs::rename(temp, target, ec);
  if (ec) {
    const std::string reason = ec.message();
    fs::remove(temp, ec);
    throw std::runtime_error(path + ": cannot replace: " + reason);
  }
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);  // the rename; a file system that cannot sync a directory has nothing to do
    ::close(dfd);
  }
}

FileLock::FileLock(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ < 0) {
    throw std::runtime_error(path + ": cannot open the lock file: " + std::strerror(errno));
  }
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int error = errno;
    ::close(fd_);
    throw std::runtime_error(path + ": cannot lock: " + std::strerror(error));
  }
}

FileLock::~FileLock() {
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return date;
}

std::string format_bytes(std::size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%zu B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

std::optional<std::size_t> parse_bytes(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.size() == 2 && (unit[1] == 'i' || unit[1] == 'I')) unit.pop_back();
  double scale = 1;
  if (unit.empty()) {
    scale = 1;
  } else if (unit == "K" || unit == "k") {
    scale = 1024.0;
  } else if (unit == "M" || unit == "m") {
    scale = 1024.0 * 1024;
  } else if (unit == "G" || unit == "g") {
    scale = 1024.0 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  if (!(v >= 0) || v * scale > 1e18) return std::nullopt;
  return std::size_t(v * scale);
}

}  // namespace convbp
