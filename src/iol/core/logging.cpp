#include "iol/core/logging.hpp"

#include <atomic>
#include <cstdlib>
#include <string_view>

namespace iol {

namespace {
LogLevel level_from_env() {
  const char* value = std::getenv("IOL_LOG_LEVEL");
  if (!value) return LogLevel::Warn;
  std::string_view name(value);
  if (name == "debug") return LogLevel::Debug;
  if (name == "info") return LogLevel::Info;
  if (name == "error") return LogLevel::Error;
  return LogLevel::Warn;
}
std::atomic<LogLevel> g_level{level_from_env()};
}  // namespace

LogLevel log_level() { return g_level.load(std::memory_order_relaxed); }
void set_log_level(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }

}  // namespace iol
