// Reference building blocks of the CPU backend: fp32 arithmetic over weights of any float dtype.
#pragma once
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "iol/core/thread_pool.hpp"
#include "iol/model/model_weights.hpp"
#include "iol/quant/codec.hpp"

namespace iol::backend::cpu {

// Sum of a[i] * b[i] with eight partial sums (vectorizable without reassociation flags).
float dot(const float* a, const float* b, int64_t n);

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// Converts `count` elements of a float tensor starting at element `first` to fp32.
void to_f32(const model::TensorView& tensor, int64_t first, int64_t count, float* out);

// out[t] = embedding row of ids[t].
void embedding_lookup(const model::TensorView& embedding, std::span<const int32_t> ids, float* out);

// out = x / sqrt(mean(x^2) + eps) * weight, row by row (out may alias x).
void rms_norm(const float* x, int64_t rows, int64_t dim, const model::TensorView& weight, double eps, float* out);

// Rotary embedding in place over x [positions][num_heads][head_dim]: pairs (i, i + head_dim / 2)
// rotated by position · inv_freq[i] (transformers' rotate_half convention).
void apply_rope(std::span<const int32_t> positions, float* x, int64_t num_heads, int64_t head_dim,
                const std::vector<float>& inv_freq, ThreadPool& pool);

// y[rows × out] = x[rows × in] · Wᵀ (+ bias); W is [out, in] in its stored dtype.
void linear(const float* x, int64_t rows, int64_t in_features, const model::LinearWeights& w, float* y,
            ThreadPool& pool);

// A linear layer of the simulated quantization schemes: 8-bit weight codes per output channel and
// the bias as fp32 (empty when none).
struct QuantizedLinear {
  quant::QuantizedMatrix weight;  // [out][in]
  std::vector<float> bias;
};
QuantizedLinear quantize_linear(const model::LinearWeights& w, quant::ElementFormat format);

// y = x · Wᵀ + bias by the contract of docs/quantization.md: with quantize_activations each row of
// x is quantized per token first and y = (Σ decode(xq)·decode(wq)) · s_x · s_w + bias; without,
// y = (Σ x·decode(wq)) · s_w + bias. fp32 throughout.
void linear_quantized(const float* x, int64_t rows, int64_t in_features, const QuantizedLinear& w,
                      bool quantize_activations, float* y, ThreadPool& pool);

}  // namespace iol::backend::cpu
