#include "iol/quant/codec.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "iol/core/error.hpp"

namespace iol::quant {
namespace {

// |value| of the 127 finite non-negative E4M3 codes 0x00..0x7e, increasing with the code.
const std::array<float, 127>& e4m3_magnitudes() {
  static const std::array<float, 127> table = [] {
    std::array<float, 127> t{};
    for (int code = 0; code < 127; ++code) {
      const int exponent = code >> 3, mantissa = code & 7;
      t[static_cast<size_t>(code)] = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -9)
                                                   : std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
    }
    return t;
  }();
  return table;
}

}  // namespace

float decode_e4m3(uint8_t code) {
  const uint8_t magnitude = code & 0x7f;
  if (magnitude == 0x7f) return std::nanf("");
  const float v = e4m3_magnitudes()[magnitude];
  return (code & 0x80) ? -v : v;
}

uint8_t encode_e4m3(float v) {
  if (std::isnan(v)) return 0x7f;
  const uint8_t sign = std::signbit(v) ? 0x80 : 0x00;
  const float a = std::fabs(v);
  if (a >= kFp8E4M3Max) return sign | 0x7e;  // saturate (infinities too)
  const auto& table = e4m3_magnitudes();
  // The first code not below a; a lies between codes hi-1 and hi.
  const auto hi = static_cast<size_t>(std::lower_bound(table.begin(), table.end(), a) - table.begin());
  if (table[hi] == a) return sign | static_cast<uint8_t>(hi);
  const size_t lo = hi - 1;
  const float below = a - table[lo], above = table[hi] - a;
  size_t code = below < above ? lo : above < below ? hi : (lo % 2 == 0 ? lo : hi);  // ties to the even code
  return sign | static_cast<uint8_t>(code);
}

int8_t encode_int8(float v) {
  if (std::isnan(v)) return 0;
  const float r = std::nearbyint(std::clamp(v, -kInt8Max, kInt8Max));  // default mode: half to even
  return static_cast<int8_t>(r);
}

uint8_t encode(ElementFormat f, float v) {
  return f == ElementFormat::Fp8E4M3 ? encode_e4m3(v) : static_cast<uint8_t>(encode_int8(v));
}

float decode(ElementFormat f, uint8_t code) {
  return f == ElementFormat::Fp8E4M3 ? decode_e4m3(code) : static_cast<float>(static_cast<int8_t>(code));
}

float row_scale(float amax, ElementFormat f, bool activation) {
  if (activation) return std::max(amax, kMinActivationAmax) / quant_max(f);
  return amax == 0.0f ? 1.0f : amax / quant_max(f);
}

float row_inverse_scale(float amax, ElementFormat f, bool activation) {
  if (activation) return quant_max(f) / std::max(amax, kMinActivationAmax);
  return amax == 0.0f ? 1.0f : quant_max(f) / amax;
}

float quantize_row(std::span<const float> x, ElementFormat f, bool activation, std::span<uint8_t> q) {
  if (q.size() != x.size()) fail("quantize_row: {} codes for {} values", q.size(), x.size());
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float inv = row_inverse_scale(amax, f, activation);
  for (size_t i = 0; i < x.size(); ++i) q[i] = encode(f, x[i] * inv);
  return row_scale(amax, f, activation);
}

QuantizedMatrix quantize_matrix(std::span<const float> x, int64_t rows, int64_t cols, ElementFormat f, bool activation) {
  if (static_cast<int64_t>(x.size()) != rows * cols) fail("quantize_matrix: {} values for [{}][{}]", x.size(), rows, cols);
  QuantizedMatrix m;
  m.format = f;
  m.rows = rows;
  m.cols = cols;
  m.codes.resize(x.size());
  m.scales.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    m.scales[static_cast<size_t>(r)] =
        quantize_row(x.subspan(static_cast<size_t>(r * cols), static_cast<size_t>(cols)), f, activation,
                     std::span(m.codes).subspan(static_cast<size_t>(r * cols), static_cast<size_t>(cols)));
  return m;
}

}  // namespace iol::quant
