// Minimal leveled logging to stderr. IOL_LOG_LEVEL=debug|info|warn|error (default warn).
#pragma once
#include <cstdio>

#include <fmt/format.h>

namespace iol {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

LogLevel log_level();
void set_log_level(LogLevel level);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < log_level()) return;
  static constexpr const char* kTags[] = {"debug", "info", "warn", "error"};
  fmt::print(stderr, "[iol {}] {}\n", kTags[static_cast<int>(level)],
             fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace iol
