#include "iol/tokenizer/text_pipeline.hpp"

#include <pcre2.h>
#include <utf8proc.h>

#include <cstdlib>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/tokenizer/byte_level.hpp"

namespace iol::tokenizer {

using nlohmann::json;

namespace {

const std::string kMetaspace = "\xE2\x96\x81";  // ▁ U+2581

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  for (size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size()) text.replace(pos, from.size(), to);
  return text;
}

// --- Normalizers -------------------------------------------------------------------------

class NfcNormalizer final : public Normalizer {
 public:
  std::string apply(const std::string& text) const override {
    if (text.empty()) return text;
    utf8proc_uint8_t* result = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()));
    if (!result) return text;  // invalid UTF-8: left as is
    std::string out(reinterpret_cast<char*>(result));
    std::free(result);
    return out;
  }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string apply(const std::string& text) const override { return text.empty() ? text : prefix_ + text; }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  std::string apply(const std::string& text) const override { return replace_all(text, from_, to_); }

 private:
  std::string from_, to_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  std::string apply(const std::string& text) const override {
    std::string out = text;
    for (const auto& step : steps_) out = step->apply(out);
    return out;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

std::string string_pattern(const json& spec, const std::string& source, const char* what) {
  const json& pattern = spec.at("pattern");
  if (pattern.contains("String")) return pattern["String"].get<std::string>();
  fail("{}: {} with a Regex pattern is not supported", source, what);
}

// --- Pre-tokenizers ----------------------------------------------------------------------

class Regex {
 public:
  Regex(const std::string& pattern, const std::string& source) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                          &error, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      fail("{}: pre-tokenizer regex does not compile at offset {}: {}", source, offset, reinterpret_cast<char*>(message));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // best effort; the interpreter is the fallback
    match_data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  }
  ~Regex() {
    pcre2_match_data_free(match_data_);
    pcre2_code_free(code_);
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches as [begin, end) byte ranges.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const {
    std::vector<std::pair<size_t, size_t>> matches;
    std::lock_guard lock(mutex_);  // match_data is per-regex scratch
    size_t start = 0;
    uint32_t options = 0;  // the first call checks UTF-8 validity; later calls skip the O(n) check
    while (start <= text.size()) {
      int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                           options, match_data_, nullptr);
      options = PCRE2_NO_UTF_CHECK;
      if (rc < 0) break;  // no match (or invalid UTF-8: the rest stays one gap)
      PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data_);
      size_t begin = ovector[0], end = ovector[1];
      if (end == begin) {
        // Empty match: step over one character.
        size_t next = begin;
        if (next >= text.size()) break;
        if (!utf8_decode_one(text, next)) next = begin + 1;
        start = next;
        continue;
      }
      matches.emplace_back(begin, end);
      start = end;
    }
    return matches;
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* match_data_ = nullptr;
  mutable std::mutex mutex_;
};

// Split with behavior Isolated: each match is a piece and so is each non-empty gap between.
class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(const std::string& pattern, const std::string& source) : regex_(pattern, source) {}
  std::vector<std::string> apply(std::vector<std::string> pieces, bool) const override {
    std::vector<std::string> out;
    for (const auto& piece : pieces) {
      size_t last = 0;
      for (auto [begin, end] : regex_.find_all(piece)) {
        if (begin > last) out.push_back(piece.substr(last, begin - last));
        out.push_back(piece.substr(begin, end - begin));
        last = end;
      }
      if (last < piece.size()) out.push_back(piece.substr(last));
    }
    return out;
  }

 private:
  Regex regex_;
};

// GPT-2's byte-to-unicode mapping, optionally after its own regex split and a prefix space.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& source)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex)
      split_ = std::make_unique<SplitPreTokenizer>(
          R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", source);
  }
  std::vector<std::string> apply(std::vector<std::string> pieces, bool first) const override {
    if (add_prefix_space_ && first && !pieces.empty() && !pieces[0].empty() && pieces[0][0] != ' ') pieces[0] = " " + pieces[0];
    if (split_) pieces = split_->apply(std::move(pieces), first);
    for (auto& piece : pieces) {
      std::string mapped;
      for (unsigned char c : piece) mapped += byte_to_unicode(c);
      piece = std::move(mapped);
    }
    return pieces;
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<SplitPreTokenizer> split_;
};

// SentencePiece-style: spaces become ▁, a ▁ is prepended (always, or to the input's first piece).
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, std::string prepend_scheme, bool split)
      : replacement_(std::move(replacement)), prepend_scheme_(std::move(prepend_scheme)), split_(split) {}
  std::vector<std::string> apply(std::vector<std::string> pieces, bool first) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string piece = replace_all(pieces[i], " ", replacement_);
      const bool prepend = prepend_scheme_ == "always" || (prepend_scheme_ == "first" && first && i == 0);
      if (prepend && !piece.empty() && piece.rfind(replacement_, 0) != 0) piece = replacement_ + piece;
      if (!split_) {
        out.push_back(std::move(piece));
        continue;
      }
      // Split before each ▁, which stays at the start of the following piece.
      size_t start = 0;
      for (size_t pos = piece.find(replacement_, 1); pos != std::string::npos; pos = piece.find(replacement_, pos + 1)) {
        out.push_back(piece.substr(start, pos - start));
        start = pos;
      }
      out.push_back(piece.substr(start));
    }
    return out;
  }

 private:
  std::string replacement_, prepend_scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  std::vector<std::string> apply(std::vector<std::string> pieces, bool first) const override {
    for (const auto& step : steps_) pieces = step->apply(std::move(pieces), first);
    return pieces;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& spec, const std::string& source) {
  if (spec.is_null()) return nullptr;
  const std::string type = spec.value("type", "");
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(spec.at("prepend").get<std::string>());
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(string_pattern(spec, source, "Replace normalizer"), spec.at("content").get<std::string>());
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& step : spec.at("normalizers"))
      if (auto n = make_normalizer(step, source)) steps.push_back(std::move(n));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  fail("{}: normalizer type '{}' is not supported (supported: NFC, Prepend, Replace, Sequence)", source, type);
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& spec, const std::string& source) {
  if (spec.is_null()) return nullptr;
  const std::string type = spec.value("type", "");
  if (type == "Split") {
    if (spec.value("behavior", "") != "Isolated" || spec.value("invert", false))
      fail("{}: Split pre-tokenizer supports behavior Isolated without invert only", source);
    const json& pattern = spec.at("pattern");
    if (pattern.contains("Regex")) return std::make_unique<SplitPreTokenizer>(pattern["Regex"].get<std::string>(), source);
    fail("{}: Split pre-tokenizer needs a Regex pattern", source);
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(spec.value("add_prefix_space", false), spec.value("use_regex", true), source);
  if (type == "Metaspace")
    return std::make_unique<MetaspacePreTokenizer>(spec.value("replacement", kMetaspace), spec.value("prepend_scheme", "always"),
                                                   spec.value("split", true));
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& step : spec.at("pretokenizers"))
      if (auto p = make_pre_tokenizer(step, source)) steps.push_back(std::move(p));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  fail("{}: pre-tokenizer type '{}' is not supported (supported: Split, ByteLevel, Metaspace, Sequence)", source, type);
}

}  // namespace iol::tokenizer
