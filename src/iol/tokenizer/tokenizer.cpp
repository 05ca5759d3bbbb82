#include "iol/tokenizer/tokenizer.hpp"

#include <filesystem>
#include <fstream>
#include <cctype>
#include <sstream>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"
#include "iol/tokenizer/byte_level.hpp"

namespace iol::tokenizer {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_word_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

// Token string of a configuration entry: "x" or {"content": "x", ...}.
std::optional<std::string> config_token(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

// transformers 5 loads Llama/Llama 2 SentencePiece tokenizers with its own pipeline: no
// normalizer and a Metaspace pre-tokenizer whose prepend scheme follows `legacy` and
// `add_prefix_space` (what the H100 oracle dump shows for tokenizer_class LlamaTokenizer).
void apply_transformers_llama_rewrite(json& tokenizer, const json& config) {
  const std::string cls = config.value("tokenizer_class", "");
  if (cls != "LlamaTokenizer" && cls != "LlamaTokenizerFast") return;
  const json& model = tokenizer["model"];
  if (!model.value("byte_fallback", false)) return;  // a byte-level Llama 3 style file: nothing to do
  const bool legacy = config.value("legacy", true);
  const bool add_prefix_space = config.value("add_prefix_space", true);
  tokenizer["normalizer"] = nullptr;
  tokenizer["pre_tokenizer"] = {{"type", "Metaspace"},
                                {"replacement", "\xE2\x96\x81"},
                                {"prepend_scheme", !add_prefix_space ? "never" : legacy ? "always" : "first"},
                                {"split", false}};
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_directory(const std::string& directory) {
  fs::path dir(directory);
  if (!fs::exists(dir / "tokenizer.json"))
    fail("{}: no tokenizer.json (a Hugging Face model or tokenizer directory is expected)", directory);
  json config = fs::exists(dir / "tokenizer_config.json") ? read_json_file((dir / "tokenizer_config.json").string()) : json::object();
  return from_json(read_json_file((dir / "tokenizer.json").string()), config, (dir / "tokenizer.json").string());
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(const json& file_json, const json& config, const std::string& source) {
  try {
    if (!file_json.is_object() || !file_json.contains("model")) fail("{}: missing 'model' object", source);
    json tokenizer_json = file_json;
    if (config.is_object()) apply_transformers_llama_rewrite(tokenizer_json, config);
    auto tokenizer = std::unique_ptr<Tokenizer>(
        new Tokenizer(BpeModel::from_json(tokenizer_json["model"], source), Vocabulary::from_json(tokenizer_json, source)));
    tokenizer->normalizer_ = make_normalizer(tokenizer_json.value("normalizer", json()), source);
    tokenizer->pre_tokenizer_ = make_pre_tokenizer(tokenizer_json.value("pre_tokenizer", json()), source);

    for (const auto& [token, id] : tokenizer_json["model"]["vocab"].items()) {
      size_t index = id.get<size_t>();
      if (index >= tokenizer->id_to_token_.size()) tokenizer->id_to_token_.resize(index + 1);
      tokenizer->id_to_token_[index] = token;
    }
    if (auto added = tokenizer_json.find("added_tokens"); added != tokenizer_json.end() && added->is_array()) {
      for (const auto& t : *added) {
        AddedToken token{t.at("id").get<int32_t>(), t.at("content").get<std::string>(), t.value("special", false),
                         t.value("lstrip", false), t.value("rstrip", false), t.value("single_word", false)};
        if (token.content.empty()) fail("{}: added token {} has empty content", source, token.id);
        if (static_cast<size_t>(token.id) >= tokenizer->id_to_token_.size()) tokenizer->id_to_token_.resize(static_cast<size_t>(token.id) + 1);
        tokenizer->id_to_token_[static_cast<size_t>(token.id)] = token.content;
        tokenizer->added_tokens_.push_back(std::move(token));
      }
    }
    tokenizer->added_by_first_byte_.resize(256);
    for (const auto& token : tokenizer->added_tokens_)
      tokenizer->added_by_first_byte_[static_cast<unsigned char>(token.content[0])].push_back(&token);
    auto id_of = [&](const std::string& content) -> std::optional<int32_t> {
      for (const auto& t : tokenizer->added_tokens_)
        if (t.content == content) return t.id;
      return tokenizer->model_.token_to_id(content);
    };
    // Post-processor: TemplateProcessing's special tokens around sequence A; others add none.
    const json post = tokenizer_json.value("post_processor", json());
    if (post.is_object() && post.value("type", "") == "TemplateProcessing") {
      bool after_sequence = false;
      // Every key is checked before use: operator[] on a const json with a missing key is undefined.
      const auto single = post.find("single");
      if (single == post.end() || !single->is_array())
        fail("{}: post_processor (TemplateProcessing) needs a 'single' list", source);
      const auto special_tokens = post.find("special_tokens");
      for (const auto& item : *single) {
        if (!item.is_object()) fail("{}: post_processor.single entries must be objects", source);
        if (item.contains("Sequence")) {
          after_sequence = true;
        } else if (item.contains("SpecialToken")) {
          const json& special = item.at("SpecialToken");
          if (!special.is_object() || !special.contains("id") || !special.at("id").is_string())
            fail("{}: post_processor.single: SpecialToken needs a string 'id'", source);
          const std::string name = special.at("id").get<std::string>();
          if (special_tokens == post.end() || !special_tokens->is_object() || !special_tokens->contains(name) ||
              !special_tokens->at(name).is_object() || !special_tokens->at(name).contains("ids"))
            fail("{}: post_processor.special_tokens has no entry '{}' with 'ids' (referenced by 'single')", source, name);
          std::vector<int32_t> ids = special_tokens->at(name).at("ids").get<std::vector<int32_t>>();
          for (int32_t id : ids)
            if (id < 0) fail("{}: post_processor.special_tokens '{}': id {} is negative", source, name, id);
          auto& target = after_sequence ? tokenizer->suffix_ids_ : tokenizer->prefix_ids_;
          target.insert(target.end(), ids.begin(), ids.end());
        }
      }
    } else if (post.is_object() && post.value("type", "") != "ByteLevel") {
      fail("{}: post-processor type '{}' is not supported (supported: TemplateProcessing, ByteLevel)", source,
           post.value("type", ""));
    }
    if (auto bos = config_token(config, "bos_token")) tokenizer->bos_id_ = id_of(*bos);
    if (auto eos = config_token(config, "eos_token")) tokenizer->eos_id_ = id_of(*eos);
    return tokenizer;
  } catch (const json::exception& error) {
    fail("{}: unexpected value: {}", source, json_error_text(error));
  }
}

std::string Tokenizer::id_to_token(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < id_to_token_.size() ? id_to_token_[static_cast<size_t>(id)] : std::string();
}

void Tokenizer::encode_segment(const std::string& segment, bool first, std::vector<int32_t>& out) const {
  std::string normalized = normalizer_ ? normalizer_->apply(segment) : segment;
  if (normalized.empty()) return;
  std::vector<std::string> pieces{normalized};
  if (pre_tokenizer_) pieces = pre_tokenizer_->apply(std::move(pieces), first);
  for (const auto& piece : pieces) model_.encode_piece(piece, out);
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = prefix_ids_;
  // Split on added tokens: at each position the longest added token that starts there wins.
  size_t segment_start = 0, pos = 0;
  while (pos < text.size()) {
    const AddedToken* match = nullptr;
    for (const AddedToken* candidate : added_by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const AddedToken& token = *candidate;
      if (text.compare(pos, token.content.size(), token.content) == 0 && (!match || token.content.size() > match->content.size()))
        if (!token.single_word || ((pos == 0 || !is_word_char(static_cast<unsigned char>(text[pos - 1]))) &&
                                   (pos + token.content.size() >= text.size() ||
                                    !is_word_char(static_cast<unsigned char>(text[pos + token.content.size()])))))
          match = &token;
    }
    if (!match) {
      ++pos;
      continue;
    }
    size_t segment_end = pos, next = pos + match->content.size();
    if (match->lstrip)
      while (segment_end > segment_start && is_space(static_cast<unsigned char>(text[segment_end - 1]))) --segment_end;
    if (match->rstrip)
      while (next < text.size() && is_space(static_cast<unsigned char>(text[next]))) ++next;
    if (segment_end > segment_start)
      encode_segment(text.substr(segment_start, segment_end - segment_start), segment_start == 0, ids);
    ids.push_back(match->id);
    segment_start = pos = next;
  }
  if (segment_start < text.size()) encode_segment(text.substr(segment_start), segment_start == 0, ids);
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

}  // namespace iol::tokenizer
