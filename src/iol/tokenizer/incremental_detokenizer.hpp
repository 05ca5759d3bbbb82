// IncrementalDetokenizer: turns a growing list of token ids into text for streaming. It never
// emits a partial UTF-8 character, and the concatenation of its outputs equals the full decode.
#pragma once
#include <cstdint>
#include <string>

#include "iol/tokenizer/vocabulary.hpp"

namespace iol::tokenizer {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Vocabulary& vocabulary, bool skip_special_tokens = true)
      : vocabulary_(vocabulary), skip_special_tokens_(skip_special_tokens) {}

  // Appends one token; returns the text that became complete.
  std::string add(int64_t token_id);
  // Remaining bytes at the end of the sequence (an unfinished character is emitted as is).
  std::string flush();
  const std::string& text() const { return emitted_; }  // everything returned so far

 private:
  const Vocabulary& vocabulary_;
  bool skip_special_tokens_;
  bool at_start_ = true;
  std::string pending_;  // bytes not yet emitted
  std::string emitted_;
};

}  // namespace iol::tokenizer
