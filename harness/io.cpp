#include "io.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
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

// The file a write to `target` replaces: `target`, or the file a symbolic link there leads to
// (through every link in a chain, relative ones from their own folder), existing or not.
fs::path write_target(fs::path target) {
  std::error_code ec;
  for (int hops = 0; hops < 40 && fs::is_symlink(fs::symlink_status(target, ec)); ++hops) {
    const fs::path next = fs::read_symlink(target, ec);
    if (ec) break;
    target = next.is_absolute() ? next : folder_of(target) / next;
  }
  return target;
}

// What a path that is neither a folder nor a regular file is, for the error that refuses it.
std::string kind_of(const fs::file_status& status) {
  switch (status.type()) {
    case fs::file_type::character:
      return "a character device";
    case fs::file_type::block:
      return "a block device";
    case fs::file_type::fifo:
      return "a FIFO";
    case fs::file_type::socket:
      return "a socket";
    default:
      return "not a regular file";
  }
}

// read_file's limit, in words (EFBIG in this category).
class InputLimitCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "convbp input"; }
  std::string message(int) const override { return "larger than 256 MiB, the most convbp reads"; }
};
std::system_error too_large() {
  static const InputLimitCategory category;
  return std::system_error(EFBIG, category);
}

// A regular file check_writable(path, schema) may replace: empty, or a JSON document of that
// schema.
void require_replaceable(const fs::path& target, const std::string& name, const char* schema) {
  std::string text;
  try {
    text = read_file(target.string());
  } catch (const std::system_error& e) {
    throw std::runtime_error(name + ": cannot read what is there now: " + e.code().message());
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return;
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  std::string what = "not a JSON document";
  if (!doc.is_discarded()) {
    const auto it = doc.is_object() ? doc.find("schema") : doc.end();
    if (it != doc.end() && it->is_string() && *it == schema) return;
    what = it == doc.end() || !it->is_string()
               ? "a JSON document without a schema"
               : "a JSON document of schema " + printable(it->get<std::string>());
    if (it != doc.end() && *it == "convbp.tuning/1") what = "a convbp tuning database";
  }
  throw std::runtime_error(name + ": exists and is " + what + ", not one of schema " + schema +
                           ": convbp replaces only its own (remove it or choose another path)");
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
  bool too_big = read_ok && S_ISREG(st.st_mode) && std::size_t(st.st_size) > kMaxInputBytes;
  for (char buf[65536]; read_ok && !too_big;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      read_ok = n == 0;
      break;
    }
    content.append(buf, std::size_t(n));
    too_big = content.size() > kMaxInputBytes;
  }
  const int error = errno;
  ::close(fd);
  if (too_big) throw too_large();
  if (!read_ok) throw std::system_error(error, std::generic_category());
  if (version) *version = version_of(st);
  return content;
}

void check_writable(const std::string& path, const char* replaces) {
  if (path.empty()) throw std::runtime_error("an empty file name");
  const std::string name = printable(path);
  require_utf8(path);
  const fs::path target = write_target(path);
  require_folder_of(target, name);
  std::error_code ec;
  const fs::file_status status = fs::status(target, ec);
  if (target.filename().empty() || fs::is_directory(status)) {
    throw std::runtime_error(name + ": cannot write: a directory, not a file name");
  }
  if (fs::exists(status) && !fs::is_regular_file(status)) {
    throw std::runtime_error(name + ": cannot write: " + kind_of(status) +
                             ", not a regular file (convbp writes a new file and renames it "
                             "over the old one, which would replace it)");
  }
  if (replaces && fs::exists(status)) require_replaceable(target, name, replaces);
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

std::string resolve_links(const std::string& path) { return write_target(path).string(); }

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) {
    const bool same = fs::equivalent(a, b, ec);
    return !ec && same;
  }
  // A dangling link as the writer follows it (weakly_canonical stops at one); absolute first,
  // as weakly_canonical leaves a relative path none of whose parts exists as it is.
  const fs::path resolved_a = fs::weakly_canonical(fs::absolute(write_target(a), ec), ec);
  if (ec) return a == b;
  const fs::path resolved_b = fs::weakly_canonical(fs::absolute(write_target(b), ec), ec);
  return ec ? a == b : resolved_a == resolved_b;
}

void write_json_atomic(const std::string& path, const nlohmann::json& doc) {
  const fs::path target = write_target(path);
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

std::string utc_date(std::time_t t) {
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return date;
}

std::string utc_now() { return utc_date(std::time(nullptr)); }

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

std::optional<double> parse_decimal_prefix(std::string_view text, std::size_t* used) {
  // from_chars reads no space, '+' or hex; a leading sign, "inf" and "nan" fail the first test.
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.')) {
    return std::nullopt;
  }
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || !std::isfinite(v)) return std::nullopt;
  *used = std::size_t(end - text.data());
  return v;
}

std::optional<std::size_t> parse_bytes(const std::string& text) {
  std::size_t used = 0;
  const std::optional<double> number = parse_decimal_prefix(text, &used);
  if (!number) return std::nullopt;
  const double v = *number;
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
  const double bytes = v * scale;
  if (!(bytes >= 0) || bytes > 1e18 || std::floor(bytes) != bytes) return std::nullopt;
  return std::size_t(bytes);
}

}  // namespace convbp
