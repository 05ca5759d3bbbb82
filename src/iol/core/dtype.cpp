#include "iol/core/dtype.hpp"

#include <array>
#include <cmath>

namespace iol {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::F8_E4M3: return 1;
    case DType::F8_E5M2: return 1;
    case DType::I8: return 1;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

namespace {
struct NamedDType {
  DType dtype;
  std::string_view safetensors_name;
};
constexpr std::array kNamedDTypes{
    NamedDType{DType::F32, "F32"},         NamedDType{DType::F16, "F16"},
    NamedDType{DType::BF16, "BF16"},       NamedDType{DType::F8_E4M3, "F8_E4M3"},
    NamedDType{DType::F8_E5M2, "F8_E5M2"}, NamedDType{DType::I8, "I8"},
    NamedDType{DType::I32, "I32"},         NamedDType{DType::I64, "I64"},
};
}  // namespace

std::string_view dtype_name(DType dtype) {
  for (const auto& named : kNamedDTypes)
    if (named.dtype == dtype) return named.safetensors_name;
  return "?";
}

std::optional<DType> dtype_from_safetensors_name(std::string_view name) {
  for (const auto& named : kNamedDTypes)
    if (named.safetensors_name == name) return named.dtype;
  return std::nullopt;
}

std::optional<DType> dtype_from_user_name(std::string_view name) {
  if (name == "f32" || name == "float32" || name == "fp32" || name == "float") return DType::F32;
  if (name == "f16" || name == "float16" || name == "fp16" || name == "half") return DType::F16;
  if (name == "bf16" || name == "bfloat16") return DType::BF16;
  return std::nullopt;
}

float f16_to_f32(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: value = mantissa * 2^-24.
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return bits_to_f32(sign | 0x7f800000u | (mantissa << 13));
  return bits_to_f32(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t f32_to_f16(float value) {
  uint32_t bits = f32_to_bits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) return sign | 0x7e00u;        // NaN
  if (abs_bits >= 0x477ff000u) return sign | 0x7c00u;       // overflow (incl. rounding) → inf
  if (abs_bits < 0x38800000u) {                             // below the smallest normal f16
    // Subnormal: round |value| * 2^24 to nearest even integer.
    float scaled = bits_to_f32(abs_bits) * 16777216.0f;
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  uint32_t rounding_bias = 0xfffu + ((abs_bits >> 13) & 1u);
  abs_bits += rounding_bias;
  return sign | static_cast<uint16_t>(((abs_bits >> 13) - (112u << 10)) & 0x7fffu);
}

}  // namespace iol
