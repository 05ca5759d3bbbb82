// iol::Error: the one exception type thrown at boundaries (loading, parsing, validating input).
// Messages say what went wrong, where (file, tensor, key, request id) and, when useful, what to do.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace iol {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Invalid command-line usage: the CLI maps it to exit code 2 (runtime errors exit 1).
class UsageError : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace iol
