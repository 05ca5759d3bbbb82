// The host side of the 8-bit numerical contract (docs/quantization.md), bit for bit what the CUDA
// kernels compute (backend/cuda/kernels/quant_codec.cuh):
//   E4M3 (OCP e4m3fn): round to nearest even, saturate to ±448, NaN stays NaN;
//   INT8: round half to even, clamp to ±127;
//   a row's scale: s = amax / qmax (1 for an all-zero weight row; activations use
//   max(amax, 1e-6) / qmax), and q = encode(x · inv) with inv = qmax / amax (same rules), one
//   correctly rounded division per row and one multiply per element.
// A quantized product is y = (Σ decode(xq)·decode(wq)) · s_x · s_w + bias, fp32 accumulation.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "iol/quant/quant_scheme.hpp"

namespace iol::quant {

inline constexpr float kFp8E4M3Max = 448.0f;
inline constexpr float kInt8Max = 127.0f;
inline constexpr float kMinActivationAmax = 1e-6f;

inline float quant_max(ElementFormat f) { return f == ElementFormat::Fp8E4M3 ? kFp8E4M3Max : kInt8Max; }

uint8_t encode_e4m3(float v);
float decode_e4m3(uint8_t code);
int8_t encode_int8(float v);
uint8_t encode(ElementFormat f, float v);
float decode(ElementFormat f, uint8_t code);

float row_scale(float amax, ElementFormat f, bool activation);
float row_inverse_scale(float amax, ElementFormat f, bool activation);

// One row quantized: its scale and its codes (one byte each; INT8 as two's complement).
float quantize_row(std::span<const float> x, ElementFormat f, bool activation, std::span<uint8_t> q);

// A [rows][cols] matrix quantized row by row (per output channel for weights, per token for
// activations).
struct QuantizedMatrix {
  ElementFormat format = ElementFormat::Fp8E4M3;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;  // rows * cols
  std::vector<float> scales;   // rows
};
QuantizedMatrix quantize_matrix(std::span<const float> x, int64_t rows, int64_t cols, ElementFormat f, bool activation);

}  // namespace iol::quant
