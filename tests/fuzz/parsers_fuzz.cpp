// libFuzzer target for the input parsers: safetensors headers, config.json and tokenizer.json.
// Any input must give a result or an iol::Error — never a crash, hang or other exception.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/model/model_config.hpp"
#include "iol/model/safetensors.hpp"
#include "iol/tokenizer/vocabulary.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the parser, so one run covers all of them.
  const uint8_t selector = data[0] % 3;
  std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  try {
    if (selector == 0) {
      (void)iol::model::parse_safetensors(rest, "fuzz.safetensors");
    } else if (selector == 1) {
      (void)iol::model::ModelConfig::from_json_text(
          std::string_view(reinterpret_cast<const char*>(rest.data()), rest.size()), "fuzz/config.json");
    } else {
      auto json = nlohmann::json::parse(rest.begin(), rest.end(), nullptr, false);
      if (!json.is_discarded()) (void)iol::tokenizer::Vocabulary::from_json(json, "fuzz/tokenizer.json");
    }
  } catch (const iol::Error&) {
  }
  return 0;
}
