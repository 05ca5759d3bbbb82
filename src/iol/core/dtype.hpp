// Element types of weights and activations, and exact host conversions between them.
// Conversions round to nearest even, as PyTorch does, so host-written checkpoints match torch.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace iol {

enum class DType : uint8_t { F32, F16, BF16, F8_E4M3, F8_E5M2, I8, I32, I64 };

size_t dtype_size(DType dtype);
// Names as written in safetensors headers ("F32", "BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType dtype);
std::optional<DType> dtype_from_safetensors_name(std::string_view name);
// Names users type and HF configs use ("float32", "bf16", "bfloat16", "f16", ...).
std::optional<DType> dtype_from_user_name(std::string_view name);

inline float bits_to_f32(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}
inline uint32_t f32_to_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float bf16_to_f32(uint16_t bits) { return bits_to_f32(static_cast<uint32_t>(bits) << 16); }

inline uint16_t f32_to_bf16(float value) {
  uint32_t bits = f32_to_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);

}  // namespace iol
