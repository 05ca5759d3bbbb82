// Streaming detokenizer property: for random id sequences, the concatenated stream equals the
// full decode, and every emitted piece is valid UTF-8.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/rng.hpp"
#include "iol/tokenizer/byte_level.hpp"
#include "iol/tokenizer/incremental_detokenizer.hpp"

namespace iol::tokenizer {
namespace {

bool valid_utf8(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size())
    if (!utf8_decode_one(text, pos)) return false;
  return true;
}

// A SentencePiece-style vocabulary: ▁-words, <0xNN> byte fallback, and a special token.
Vocabulary sentencepiece_vocabulary() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = b;
  vocab["\xE2\x96\x81hello"] = 256;
  vocab["\xE2\x96\x81w\xC3\xB6rld"] = 257;
  nlohmann::json root = {{"model", {{"type", "BPE"}, {"vocab", vocab}}},
                         {"decoder", {{"type", "Sequence"}, {"decoders", nlohmann::json::array()}}},
                         {"added_tokens", {{{"id", 258}, {"content", "</s>"}, {"special", true}}}}};
  return Vocabulary::from_json(root, "sp");
}

Vocabulary byte_level_vocabulary() {
  return Vocabulary::from_json(make_byte_level_tokenizer(300, 256, 257).first, "bl");
}

TEST(Vocabulary, DecodesByteLevelAndSentencePiece) {
  Vocabulary bl = byte_level_vocabulary();
  std::vector<int64_t> ids = {256, 'H', 'i', 0xC3, 0xA9, 257};
  EXPECT_EQ(bl.decode(ids), "Hi\xC3\xA9");
  EXPECT_EQ(bl.decode(ids, false), "<|begin_of_text|>Hi\xC3\xA9<|end_of_text|>");
  Vocabulary sp = sentencepiece_vocabulary();
  std::vector<int64_t> sp_ids = {256, 257, 0xE2, 0x9C, 0x93, 258};
  EXPECT_EQ(sp.decode(sp_ids), "hello w\xC3\xB6rld\xE2\x9C\x93");
}

TEST(IncrementalDetokenizer, StripsTheSentencePieceLeadingSpaceOnce) {
  // Regression: a first token that is a lone space used to let the next token lose its space too.
  Vocabulary sp = sentencepiece_vocabulary();
  std::vector<int64_t> ids = {' ', 256};  // " " then "▁hello"
  IncrementalDetokenizer stream(sp);
  std::string out = stream.add(ids[0]) + stream.add(ids[1]) + stream.flush();
  EXPECT_EQ(out, sp.decode(ids));
  EXPECT_EQ(out, " hello");
}

TEST(IncrementalDetokenizer, StreamEqualsFullDecodeAndIsAlwaysValidUtf8) {
  Rng rng(2024);
  const std::vector<Vocabulary> vocabularies = {byte_level_vocabulary(), sentencepiece_vocabulary()};
  for (const Vocabulary& v : vocabularies) {
    const Vocabulary* vocabulary = &v;
    for (int trial = 0; trial < 2000; ++trial) {
      std::vector<int64_t> ids;
      size_t length = 1 + rng.next_u64() % 40;
      for (size_t i = 0; i < length; ++i) {
        // Mostly multi-byte UTF-8 pieces, some ASCII, some random bytes and specials.
        uint64_t kind = rng.next_u64() % 10;
        if (kind < 5) {
          const int64_t seq[][4] = {{0xE2, 0x9C, 0x93, -1}, {0xF0, 0x9F, 0x98, 0x80}, {0xC3, 0xA9, -1, -1}};
          for (int64_t b : seq[rng.next_u64() % 3])
            if (b >= 0) ids.push_back(b);
        } else if (kind < 8) {
          ids.push_back(static_cast<int64_t>(32 + rng.next_u64() % 90));
        } else {
          ids.push_back(static_cast<int64_t>(rng.next_u64() % vocabulary->size()));
        }
      }
      IncrementalDetokenizer detokenizer(*vocabulary);
      std::string stream;
      for (auto id : ids) {
        std::string piece = detokenizer.add(id);
        stream += piece;
        // Every piece ends on a character boundary unless the input held invalid bytes.
        if (valid_utf8(vocabulary->decode(ids))) ASSERT_TRUE(valid_utf8(piece)) << "trial " << trial;
      }
      stream += detokenizer.flush();
      ASSERT_EQ(stream, vocabulary->decode(ids)) << "trial " << trial;
    }
  }
}

}  // namespace
}  // namespace iol::tokenizer
