// Stop strings over streamed text: finds the first match and says how much text is safe to
// stream (text that could still become the start of a stop string is held back).
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace iol::engine {

class StopChecker {
 public:
  explicit StopChecker(std::vector<std::string> stop_strings);

  // `text` is the whole output so far, of which the last `new_bytes` are new. Returns the
  // position where the output must be cut if a stop string now occurs.
  std::optional<size_t> find_stop(const std::string& text, size_t new_bytes) const;
  // Bytes of `text` that can be streamed while generation continues.
  size_t streamable_prefix(const std::string& text) const;

 private:
  std::vector<std::string> stop_strings_;
  size_t longest_ = 0;
};

}  // namespace iol::engine
