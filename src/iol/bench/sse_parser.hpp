// SseParser: Server-Sent Events from a byte stream that arrives in arbitrary pieces — the `data:`
// payload of each event (lines joined with "\n"), as OpenAI-compatible servers stream chunks.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace iol::bench {

class SseParser {
 public:
  // Feeds bytes; returns the payloads of the events they completed.
  std::vector<std::string> feed(std::string_view bytes);

 private:
  std::string line_;  // the current, unfinished line
  std::string data_;  // data lines of the current event
  bool has_data_ = false;
};

}  // namespace iol::bench
