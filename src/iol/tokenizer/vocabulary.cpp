#include "iol/tokenizer/vocabulary.hpp"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"
#include "iol/tokenizer/byte_level.hpp"

namespace iol::tokenizer {

using nlohmann::json;

namespace {
const std::string kEmpty;

bool is_byte_level(const json& tokenizer) {
  auto decoder = tokenizer.find("decoder");
  if (decoder == tokenizer.end() || !decoder->is_object()) return false;
  if (decoder->value("type", "") == "ByteLevel") return true;
  if (decoder->value("type", "") == "Sequence" && decoder->contains("decoders"))
    for (const auto& d : decoder->at("decoders"))
      if (d.value("type", "") == "ByteLevel") return true;
  return false;
}

// Bytes of a SentencePiece-style piece: ▁ → space, <0xNN> → that byte.
std::string sentencepiece_bytes(const std::string& piece) {
  if (piece.size() == 6 && piece.rfind("<0x", 0) == 0 && piece[5] == '>') {
    return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
  }
  std::string out;
  static const std::string kSpaceMark = "\xE2\x96\x81";  // U+2581
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out.push_back(' ');
      i += kSpaceMark.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

std::string byte_level_bytes(const std::string& token, const std::string& source) {
  std::string out;
  size_t pos = 0;
  while (pos < token.size()) {
    auto cp = utf8_decode_one(token, pos);
    if (!cp) fail("{}: token '{}' is not valid UTF-8", source, token);
    auto byte = unicode_to_byte(*cp);
    if (!byte) return token;  // not in the byte alphabet: keep as is (e.g. special tokens)
    out.push_back(static_cast<char>(*byte));
  }
  return out;
}
}  // namespace

Vocabulary Vocabulary::from_file(const std::string& path) { return from_json(read_json_file(path), path); }

Vocabulary Vocabulary::from_json(const json& root, const std::string& source) {
  try {
    return parse_vocabulary(root, source);
  } catch (const json::exception& error) {
    fail("{}: unexpected value: {}", source, json_error_text(error));
  }
}

Vocabulary Vocabulary::parse_vocabulary(const json& root, const std::string& source) {
  if (!root.is_object()) fail("{}: expected a JSON object", source);
  auto model = root.find("model");
  if (model == root.end() || !model->is_object()) fail("{}: missing 'model' object", source);
  auto vocab = model->find("vocab");
  if (vocab == model->end() || !vocab->is_object()) fail("{}: 'model.vocab' must be an object of token → id", source);
  Vocabulary result;
  bool byte_level = is_byte_level(root);
  result.strip_leading_space_ = !byte_level;
  auto place = [&](int64_t id, std::string bytes, bool special) {
    if (id < 0 || id > (1 << 24)) fail("{}: token id {} is out of range", source, id);
    if (static_cast<size_t>(id) >= result.token_bytes_.size()) {
      result.token_bytes_.resize(static_cast<size_t>(id) + 1);
      result.special_.resize(static_cast<size_t>(id) + 1, false);
    }
    result.token_bytes_[static_cast<size_t>(id)] = std::move(bytes);
    result.special_[static_cast<size_t>(id)] = special;
  };
  for (const auto& [token, id] : vocab->items()) {
    if (!id.is_number_integer()) fail("{}: vocab entry '{}' must map to an integer id", source, token);
    place(id.get<int64_t>(), byte_level ? byte_level_bytes(token, source) : sentencepiece_bytes(token), false);
  }
  if (auto added = root.find("added_tokens"); added != root.end() && added->is_array()) {
    for (const auto& token : *added) {
      if (!token.is_object() || !token.contains("id") || !token.contains("content") ||
          !token["id"].is_number_integer() || !token["content"].is_string())
        fail("{}: every added_tokens entry needs an integer 'id' and a string 'content'", source);
      place(token["id"].get<int64_t>(), token["content"].get<std::string>(), token.value("special", false));
    }
  }
  return result;
}

bool Vocabulary::is_special(int64_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[static_cast<size_t>(id)];
}

const std::string& Vocabulary::token_bytes(int64_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= token_bytes_.size()) return kEmpty;
  return token_bytes_[static_cast<size_t>(id)];
}

std::string Vocabulary::decode(std::span<const int64_t> ids, bool skip_special_tokens) const {
  std::string out;
  for (auto id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    out += token_bytes(id);
  }
  if (strip_leading_space_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::pair<json, json> make_byte_level_tokenizer(int64_t vocab_size, int64_t bos_id, int64_t eos_id) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_to_unicode(static_cast<uint8_t>(b))] = b;
  json added = json::array();
  auto add_special = [&](int64_t id, const std::string& content) {
    added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  };
  add_special(bos_id, "<|begin_of_text|>");
  add_special(eos_id, "<|end_of_text|>");
  // Reserved specials fill small vocabularies so every id the model can emit decodes.
  if (vocab_size <= 4096)
    for (int64_t id = 256; id < vocab_size; ++id)
      if (id != bos_id && id != eos_id) add_special(id, fmt::format("<|reserved_special_token_{}|>", id - 256));
  json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  json tokenizer = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({json{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array({json{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                              json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              json{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 1}}}},
                              json{{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
        {"special_tokens",
         {{"<|begin_of_text|>",
           {{"id", "<|begin_of_text|>"}, {"ids", {bos_id}}, {"tokens", {"<|begin_of_text|>"}}}}}}}},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
        {"ignore_merges", false}, {"vocab", vocab}, {"merges", json::array()}}}};
  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"bos_token", "<|begin_of_text|>"},
                 {"eos_token", "<|end_of_text|>"},
                 {"add_bos_token", true},
                 {"model_max_length", 1000000}};
  return {tokenizer, config};
}

}  // namespace iol::tokenizer
