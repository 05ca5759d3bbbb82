#include "iol/tokenizer/incremental_detokenizer.hpp"

#include "iol/tokenizer/byte_level.hpp"

namespace iol::tokenizer {

std::string IncrementalDetokenizer::add(int64_t token_id) {
  if (skip_special_tokens_ && vocabulary_.is_special(token_id)) return {};
  pending_ += vocabulary_.token_bytes(token_id);
  if (at_start_ && !pending_.empty()) {
    // SentencePiece decoders strip the one space the encoder put before the first word — once,
    // even when that leaves the first token empty.
    if (vocabulary_.strips_leading_space() && pending_[0] == ' ') pending_.erase(0, 1);
    at_start_ = false;
  }
  size_t complete = utf8_complete_prefix(pending_);
  std::string out = pending_.substr(0, complete);
  pending_.erase(0, complete);
  emitted_ += out;
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out;
  out.swap(pending_);
  emitted_ += out;
  return out;
}

}  // namespace iol::tokenizer
