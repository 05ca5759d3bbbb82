// JsonlAppender: an append-only .jsonl output (results records, request traces), opened and
// checked before anything is measured, so a bad --out fails in a second instead of after a sweep.
// Every append is whole lines in one write under an exclusive lock; a write that fails part-way is
// truncated back, so the file only ever holds complete lines. A file whose last line has no
// newline is repaired when that line is a whole JSON object (only the newline was lost) and
// refused otherwise: appending onto it would make both records unreadable.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace iol::bench {

class JsonlAppender {
 public:
  // Creates the file and its directory when needed; throws iol::Error naming the path when it is
  // not a regular file, cannot be written, does not hold JSON lines, or ends in a broken line.
  explicit JsonlAppender(std::string path);
  ~JsonlAppender();
  JsonlAppender(const JsonlAppender&) = delete;
  JsonlAppender& operator=(const JsonlAppender&) = delete;

  void append(const nlohmann::json& record);
  void append(const std::vector<nlohmann::json>& records);  // one write for all lines
  const std::string& path() const { return path_; }

 private:
  void check_existing_lines();
  void write_whole(const std::string& bytes);
  std::string path_;
  int fd_ = -1;
};

// The request-traces file beside a results file: R.jsonl → R.requests.jsonl (other names get
// ".requests.jsonl" appended), by path components, never by searching the string.
std::string traces_path_for(const std::string& results_path);

}  // namespace iol::bench
