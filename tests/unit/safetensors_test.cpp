#include <gtest/gtest.h>

#include <cstring>

#include "iol/core/error.hpp"
#include "iol/model/safetensors.hpp"

namespace iol::model {
namespace {

std::vector<std::byte> file_with_header(const std::string& header, size_t data_bytes) {
  std::vector<std::byte> bytes(8 + header.size() + data_bytes, std::byte{0x11});
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return bytes;
}

std::string error_of(const std::vector<std::byte>& bytes) {
  try {
    parse_safetensors(bytes, "m.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string error_of_header(const std::string& header, size_t data_bytes) {
  return error_of(file_with_header(header, data_bytes));
}

TEST(Safetensors, WriteThenParseRoundTrips) {
  std::vector<float> a = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  std::vector<uint16_t> b = {0x3f80, 0x4000};
  std::vector<TensorToWrite> tensors = {
      {"a", DType::F32, {2, 3}, std::as_bytes(std::span(a))},
      {"b", DType::BF16, {2}, std::as_bytes(std::span(b))},
  };
  std::string header = make_safetensors_header(tensors, {{"format", "pt"}});
  EXPECT_EQ(header.size() % 8, 0u);
  auto bytes = file_with_header(header, 0);
  bytes.insert(bytes.end(), std::as_bytes(std::span(a)).begin(), std::as_bytes(std::span(a)).end());
  bytes.insert(bytes.end(), std::as_bytes(std::span(b)).begin(), std::as_bytes(std::span(b)).end());
  SafetensorsHeader parsed = parse_safetensors(bytes, "x");
  ASSERT_EQ(parsed.tensors.size(), 2u);
  EXPECT_EQ(parsed.metadata.at("format"), "pt");
  const TensorView& ta = parsed.tensors.at("a");
  EXPECT_EQ(ta.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ta.get(5), 6.0f);
  EXPECT_EQ(parsed.tensors.at("b").get(1), 2.0f);
}

TEST(Safetensors, BadInputErrorsNameFileAndTensor) {
  EXPECT_EQ(error_of(std::vector<std::byte>(5)),
            "m.safetensors: truncated safetensors file: 5 bytes, need at least 8 for the header length");
  auto past_end = file_with_header("{}", 0);
  past_end[0] = std::byte{0xff};
  EXPECT_EQ(error_of(past_end), "m.safetensors: header length 255 runs past the end of the file (10 bytes); "
                                "the file is truncated or not safetensors");
  EXPECT_EQ(error_of_header("{\"a\": ", 0), "m.safetensors: malformed header JSON (6 bytes)");
  EXPECT_EQ(error_of_header("[]", 0), "m.safetensors: header JSON must be an object of tensors");
  EXPECT_EQ(error_of_header(R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", 8),
            "m.safetensors: tensor 'w': unsupported dtype 'F64' (supported: F32, F16, BF16, F8_E4M3, F8_E5M2, I8, I32, I64)");
  EXPECT_EQ(error_of_header(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4),
            "m.safetensors: tensor 'w': missing or non-array 'shape'");
  EXPECT_EQ(error_of_header(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
            "m.safetensors: tensor 'w': shape must hold non-negative integers (got -1)");
  EXPECT_EQ(error_of_header(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}})", 8),
            "m.safetensors: tensor 'w': data_offsets [0, 16] are outside the data section (8 bytes)");
  EXPECT_EQ(error_of_header(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8),
            "m.safetensors: tensor 'w': data_offsets span 8 bytes but shape [3] of F32 needs 12");
  EXPECT_EQ(error_of_header(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8),
            "m.safetensors: tensor 'w': data_offsets [8, 0] are outside the data section (8 bytes)");
  EXPECT_EQ(error_of_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12),
            "m.safetensors: tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  EXPECT_EQ(error_of_header(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8),
            "m.safetensors: tensor 'w': shape [4294967296,4294967296] is too large");
  EXPECT_EQ(error_of_header(R"({"__metadata__": {"format": 1}})", 0),
            "m.safetensors: __metadata__ key 'format' must be a string");
}

}  // namespace
TEST(Safetensors, AnEmptyTensorDoesNotHideAnOverlap) {
  // a [0, 8) and b [6, 10) overlap; the empty e [4, 4) sorted between them used to hide it.
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[6,10]}})";
  EXPECT_NE(error_of_header(header, 10).find("overlap"), std::string::npos) << error_of_header(header, 10);
  // A long tensor overlapping a later one past a short one in between.
  const std::string nested =
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"s":{"dtype":"F32","shape":[1],"data_offsets":[2,6]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  EXPECT_NE(error_of_header(nested, 16).find("overlap"), std::string::npos);
  const std::string fine =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  EXPECT_EQ(error_of_header(fine, 8), "(no error)");
}

TEST(Safetensors, DeeplyNestedHeaderIsRefused) {
  const std::string header = R"({"__metadata__":)" + std::string(5000, '[') + std::string(5000, ']') + "}";
  EXPECT_NE(error_of_header(header, 0).find("nested deeper than"), std::string::npos);
}

}  // namespace iol::model
