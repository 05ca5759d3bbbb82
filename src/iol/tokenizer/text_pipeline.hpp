// The text stages of a tokenizer.json before BPE: normalizers (NFC, Prepend, Replace, Sequence)
// and pre-tokenizers (Split by regex, ByteLevel, Metaspace, Sequence). Regexes run on PCRE2 with
// UTF and Unicode properties; NFC comes from utf8proc. Unsupported types fail naming the type.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace iol::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string apply(const std::string& text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits (and rewrites) each piece; `first` says whether pieces[0] starts the input.
  virtual std::vector<std::string> apply(std::vector<std::string> pieces, bool first) const = 0;
};

// null JSON → nullptr (the stage is absent).
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec, const std::string& source);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec, const std::string& source);

}  // namespace iol::tokenizer
