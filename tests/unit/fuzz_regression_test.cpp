// Inputs that once crashed the parser fuzz target (tests/fuzz/parsers_fuzz.cpp), replayed through
// the same entry points on every test run: each must give a result or an iol::Error. The files
// live in tests/fixtures/fuzz_regressions/<folder of the parser>/, without the fuzzer's selector byte.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "../fuzz/parser_targets.hpp"

namespace iol::fuzz {
namespace {

const std::filesystem::path kRegressions = std::filesystem::path(IOL_FIXTURES_DIR) / "fuzz_regressions";

std::vector<std::byte> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text(std::istreambuf_iterator<char>(in), {});
  std::vector<std::byte> bytes(text.size());
  std::memcpy(bytes.data(), text.data(), text.size());
  return bytes;
}

TEST(FuzzRegressions, EveryStoredInputGivesAResultOrAnIolError) {
  int replayed = 0;
  for (ParserTarget target : kParserTargets) {
    const auto folder = kRegressions / regression_folder(target);
    if (!std::filesystem::is_directory(folder)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      const std::vector<std::byte> input = read_bytes(entry.path());
      for (bool add_special_tokens : {false, true}) {
        try {
          run_parser_target(target, input, add_special_tokens);
        } catch (const Error&) {
          // A clean rejection is fine.
        } catch (const std::exception& e) {
          ADD_FAILURE() << entry.path() << " (special tokens " << add_special_tokens << "): " << e.what();
        }
      }
      ++replayed;
    }
  }
  // The encoder input that made BpeModel::merge_symbols read next[-1] (ASan/UBSan) is among them.
  EXPECT_TRUE(std::filesystem::exists(kRegressions / "encode" / "bpe-merge-first-symbol-c0dc1d27"));
  EXPECT_GE(replayed, 1);
}

TEST(FuzzRegressions, EveryFileIsInTheFolderOfAParser) {
  std::set<std::string> known;
  for (ParserTarget target : kParserTargets) known.insert(regression_folder(target));
  for (const auto& entry : std::filesystem::directory_iterator(kRegressions)) {
    if (entry.path().filename() == "README.md") continue;
    EXPECT_TRUE(entry.is_directory() && known.count(entry.path().filename().string()))
        << entry.path() << " would never be replayed: regression inputs go in one of the parser folders "
        << "(safetensors, config, tokenizer_json, encode, chat_template, openai_request)";
  }
}

}  // namespace
}  // namespace iol::fuzz
