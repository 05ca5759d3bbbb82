#include "iol/bench/results_file.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"

namespace iol::bench {

namespace {

// Holds flock(LOCK_EX) for a scope: two benches appending to one file do not interleave checks and writes.
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {}
  }
  ~FileLock() { ::flock(fd_, LOCK_UN); }

 private:
  int fd_;
};

std::string read_range(int fd, off_t begin, off_t end, const std::string& path) {
  std::string bytes(static_cast<size_t>(end - begin), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, begin + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("{}: cannot read: {}", path, n < 0 ? std::strerror(errno) : "unexpected end of file");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

bool is_json_object(const std::string& line, const std::string& source) {
  try {
    auto value = parse_json_or_discarded(line, source);
    return !value.is_discarded() && value.is_object();
  } catch (const Error&) {
    return false;  // nested too deep: not one of our records
  }
}

}  // namespace

JsonlAppender::JsonlAppender(std::string path) : path_(std::move(path)) {
  if (path_.empty()) fail("results path is empty");
  std::error_code error;
  const auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, error);
    if (error) fail("{}: cannot create the directory {}: {}", path_, parent.string(), error.message());
  }
  // O_NONBLOCK: a FIFO without a reader fails here instead of blocking; it is refused below anyway.
  fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd_ < 0) fail("{}: cannot open for appending: {}", path_, std::strerror(errno));
  struct stat info {};
  struct statfs fs_info {};
  // procfs and sysfs files claim to be regular but are kernel interfaces (/proc/self/mem!).
  const bool kernel_fs = ::fstatfs(fd_, &fs_info) == 0 && (fs_info.f_type == PROC_SUPER_MAGIC || fs_info.f_type == SYSFS_MAGIC);
  if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode) || kernel_fs) {
    ::close(fd_);
    fail("{}: not a regular file (results are appended to a regular file)", path_);
  }
  try {
    check_existing_lines();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

void JsonlAppender::check_existing_lines() {
  FileLock lock(fd_);
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  if (size <= 0) return;
  // The first line must be a JSON object: never append records to a report, a script or a binary.
  const std::string head = read_range(fd_, 0, std::min<off_t>(size, 1 << 20), path_);
  const size_t first_newline = head.find('\n');
  if (first_newline != std::string::npos) {  // a file of one unterminated line is the tail case below
    const std::string first = head.substr(0, first_newline);
    if (first.find_first_not_of(" \t\r") != std::string::npos && !is_json_object(first, path_ + ":1"))
      fail("{}: exists and is not a JSON-lines results file (line 1 is not a JSON object); choose another --out",
           path_);
  }
  const std::string last_byte = read_range(fd_, size - 1, size, path_);
  if (last_byte == "\n") return;
  // The last line has no newline: find where it starts.
  off_t start = size;
  std::string tail;
  while (start > 0) {
    const off_t begin = std::max<off_t>(0, start - 65536);
    std::string chunk = read_range(fd_, begin, start, path_);
    const size_t newline = chunk.rfind('\n');
    if (newline != std::string::npos) {
      tail = chunk.substr(newline + 1) + tail;
      start = begin + static_cast<off_t>(newline) + 1;
      break;
    }
    tail = chunk + tail;
    start = begin;
  }
  if (!is_json_object(tail, path_))
    fail("{}: the last line ({} bytes from byte {}) is an incomplete record, e.g. from an interrupted write; "
         "appending would corrupt it: delete that line (or move the file) and rerun", path_, tail.size(), start);
  write_whole("\n");  // the record was whole; only its newline was missing
}

JsonlAppender::~JsonlAppender() {
  if (fd_ >= 0) ::close(fd_);
}

void JsonlAppender::append(const nlohmann::json& record) {
  write_whole(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void JsonlAppender::append(const std::vector<nlohmann::json>& records) {
  std::string bytes;
  for (const auto& r : records) bytes += r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (!bytes.empty()) write_whole(bytes);
}

void JsonlAppender::write_whole(const std::string& bytes) {
  FileLock lock(fd_);
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : ENOSPC;
      // Cut the partial line off again: the file keeps only complete records.
      if (before >= 0 && ::ftruncate(fd_, before) != 0) {}
      fail("{}: write failed after {} of {} bytes: {} (the partial line was removed)", path_, done, bytes.size(),
           std::strerror(error));
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0 && errno != EINVAL) fail("{}: fdatasync failed: {}", path_, std::strerror(errno));
}

std::string traces_path_for(const std::string& results_path) {
  std::filesystem::path p(results_path);
  if (p.extension() == ".jsonl") return p.replace_extension(".requests.jsonl").string();
  return results_path + ".requests.jsonl";
}

}  // namespace iol::bench
