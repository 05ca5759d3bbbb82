#include "iol/core/json_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "iol/core/error.hpp"

namespace iol {

namespace {
template <typename Json>
Json parse_checked(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON: {}", source, json_error_text(e));  // nlohmann's message gives line and column
  }
}
}  // namespace

std::string json_error_text(const nlohmann::json::exception& error) {
  std::string text = error.what();
  if (text.rfind("[json.exception.", 0) == 0) {
    const size_t end = text.find("] ");
    if (end != std::string::npos) text.erase(0, end + 2);
  }
  return text;
}

std::string read_text_file(const std::string& path, int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer for ever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    fail("{}: not a regular file (a directory, FIFO or device cannot be read as input)", path);
  }
  if (info.st_size > max_bytes) {
    ::close(fd);
    fail("{}: {} bytes is larger than the {} bytes accepted for this input", path, info.st_size, max_bytes);
  }
  std::string text(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      fail("{}: read failed: {}", path, std::strerror(error));
    }
    if (n == 0) break;  // the file shrank while being read
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(done);
  return text;
}

void check_json_depth(std::string_view text, const std::string& source, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) fail("{}: nested deeper than {} levels of [ ] or {{ }}", source, max_depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

nlohmann::json parse_json(std::string_view text, const std::string& source) {
  return parse_checked<nlohmann::json>(text, source);
}
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source) {
  return parse_checked<nlohmann::ordered_json>(text, source);
}
nlohmann::json parse_json_or_discarded(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  return nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

nlohmann::json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }
nlohmann::ordered_json read_ordered_json_file(const std::string& path) {
  return parse_ordered_json(read_text_file(path), path);
}

}  // namespace iol
