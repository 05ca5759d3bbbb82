// Test helper: poisons part of a safetensors file in place (NaN over f32 values), so the model
// produces non-finite logits for chosen tokens (the engine's request-failure path).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

namespace iol::testing {

// Writes NaN over the f32 values of `tensor` (rows [first_row, first_row + rows) of a 2-D tensor) in place.
inline void poison_tensor(const std::string& file, const std::string& tensor, int64_t first_row = 0, int64_t rows = -1) {
  std::ifstream in(file, std::ios::binary);
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  const nlohmann::json entry = nlohmann::json::parse(header)[tensor];
  ASSERT_EQ(entry["dtype"], "F32");
  const int64_t begin = entry["data_offsets"][0], end = entry["data_offsets"][1];
  const int64_t row_bytes = entry["shape"].size() == 2 ? entry["shape"][1].get<int64_t>() * 4 : end - begin;
  const int64_t from = begin + first_row * row_bytes, to = rows < 0 ? end : from + rows * row_bytes;
  std::fstream out(file, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(static_cast<std::streamoff>(8 + header_len + from));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = from; i < to; i += 4) out.write(reinterpret_cast<const char*>(&nan), 4);
}

}  // namespace iol::testing
