#include "iol/cli/output_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"
#include "iol/core/same_file.hpp"

namespace iol::cli {

namespace fs = std::filesystem;

void check_output_path(const std::string& path, const char* flag, const std::vector<std::string>& inputs,
                       bool appends_records) {
  if (path.empty()) throw UsageError(fmt::format("{} needs a file path", flag));
  std::error_code error;
  if (fs::is_directory(path, error)) throw UsageError(fmt::format("{} {}: is a directory, not a file", flag, path));
  for (const std::string& input : inputs)
    if (same_file(path, input))
      throw UsageError(fmt::format("{} {}: is also an input ({}); outputs never overwrite inputs", flag, path, input));
  if (!appends_records) refuse_results_file(path, flag);
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, error);
    if (error) fail("{} {}: cannot create the directory {}: {}", flag, path, parent.string(), error.message());
  }
  const std::string directory = parent.empty() ? "." : parent.string();
  if (::access(directory.c_str(), W_OK) != 0)
    fail("{} {}: the directory {} is not writable: {}", flag, path, directory, std::strerror(errno));
  if (fs::exists(path, error) && ::access(path.c_str(), W_OK) != 0)
    fail("{} {}: exists and is not writable: {}", flag, path, std::strerror(errno));
}

void refuse_results_file(const std::string& path, const char* flag) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line) && line.find_first_not_of(" \t\r") == std::string::npos) {}
  if (line.empty()) return;
  try {
    const auto first = parse_json_or_discarded(line, path);
    if (first.is_object() && first.contains("schema_version") && first.contains("run_id"))
      throw UsageError(fmt::format("{} {}: holds benchmark result records; it is never overwritten (choose another path)",
                                   flag, path));
  } catch (const UsageError&) {
    throw;
  } catch (const Error&) {
    // Not JSON we could read: not a results file.
  }
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  const fs::path target(path);
  if (!target.parent_path().empty()) fs::create_directories(target.parent_path());
  const std::string temporary = fmt::format("{}.tmp-{}", path, ::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot write: {}", temporary, std::strerror(errno));
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : ENOSPC;
      ::close(fd);
      ::unlink(temporary.c_str());
      fail("{}: write failed: {}", path, std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temporary.c_str());
    fail("{}: write failed: {}", path, std::strerror(errno));
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(temporary.c_str());
    fail("{}: cannot replace: {}", path, std::strerror(e));
  }
}

}  // namespace iol::cli
