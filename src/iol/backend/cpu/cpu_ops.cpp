#include "iol/backend/cpu/cpu_ops.hpp"

#include <cstring>
#include <vector>

#include "iol/core/error.hpp"

namespace iol::backend::cpu {

float dot(const float* a, const float* b, int64_t n) {
  float partial[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) partial[j] += a[i + j] * b[i + j];
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((partial[0] + partial[4]) + (partial[1] + partial[5])) +
         ((partial[2] + partial[6]) + (partial[3] + partial[7])) + tail;
}

namespace {
// The data of a tensor may sit at any byte offset (safetensors does not require an aligned header
// length): 16-bit values are read with memcpy, which compiles to one unaligned load.
uint16_t load_u16(const std::byte* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return bits;
}
}  // namespace

void to_f32(const model::TensorView& tensor, int64_t first, int64_t count, float* out) {
  const std::byte* base = tensor.data + static_cast<size_t>(first) * dtype_size(tensor.dtype);
  switch (tensor.dtype) {
    case DType::F32:
      std::memcpy(out, base, static_cast<size_t>(count) * sizeof(float));
      return;
    case DType::BF16: {
      for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_f32(load_u16(base + 2 * i));
      return;
    }
    case DType::F16: {
      for (int64_t i = 0; i < count; ++i) out[i] = f16_to_f32(load_u16(base + 2 * i));
      return;
    }
    default:
      fail("cpu backend: tensor '{}' has dtype {}, which the CPU reference does not compute with", tensor.name,
           dtype_name(tensor.dtype));
  }
}

void embedding_lookup(const model::TensorView& embedding, std::span<const int32_t> ids, float* out) {
  const int64_t vocab = embedding.shape[0], dim = embedding.shape[1];
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] < 0 || ids[t] >= vocab) fail("token id {} is outside the vocabulary [0, {})", ids[t], vocab);
    to_f32(embedding, ids[t] * dim, dim, out + static_cast<int64_t>(t) * dim);
  }
}

void rms_norm(const float* x, int64_t rows, int64_t dim, const model::TensorView& weight, double eps, float* out) {
  std::vector<float> w(static_cast<size_t>(dim));
  to_f32(weight, 0, dim, w.data());
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * dim;
    float sum_squares = dot(row, row, dim);
    const float inv_rms = 1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + static_cast<float>(eps));
    float* o = out + r * dim;
    for (int64_t i = 0; i < dim; ++i) o[i] = w[static_cast<size_t>(i)] * (row[i] * inv_rms);
  }
}

void linear(const float* x, int64_t rows, int64_t in_features, const model::LinearWeights& w, float* y,
            ThreadPool& pool) {
  const model::TensorView& weight = *w.weight;
  const int64_t out_features = weight.shape[0];
  std::vector<float> bias;
  if (w.bias) {
    bias.resize(static_cast<size_t>(out_features));
    to_f32(*w.bias, 0, out_features, bias.data());
  }
  pool.parallel_for(static_cast<size_t>(out_features), [&](size_t begin, size_t end) {
    // One weight row converted to fp32 is reused by every input row.
    std::vector<float> weight_row(static_cast<size_t>(in_features));
    for (size_t n = begin; n < end; ++n) {
      to_f32(weight, static_cast<int64_t>(n) * in_features, in_features, weight_row.data());
      const float b = bias.empty() ? 0.0f : bias[n];
      for (int64_t r = 0; r < rows; ++r)
        y[r * out_features + static_cast<int64_t>(n)] = dot(x + r * in_features, weight_row.data(), in_features) + b;
    }
  });
}

QuantizedLinear quantize_linear(const model::LinearWeights& w, quant::ElementFormat format) {
  const model::TensorView& weight = *w.weight;
  const int64_t out_features = weight.shape[0], in_features = weight.shape[1];
  QuantizedLinear q;
  q.weight.format = format;
  q.weight.rows = out_features;
  q.weight.cols = in_features;
  q.weight.codes.resize(static_cast<size_t>(out_features * in_features));
  q.weight.scales.resize(static_cast<size_t>(out_features));
  std::vector<float> row(static_cast<size_t>(in_features));
  for (int64_t n = 0; n < out_features; ++n) {
    to_f32(weight, n * in_features, in_features, row.data());
    q.weight.scales[static_cast<size_t>(n)] = quant::quantize_row(
        row, format, false, std::span(q.weight.codes).subspan(static_cast<size_t>(n * in_features), static_cast<size_t>(in_features)));
  }
  if (w.bias) {
    q.bias.resize(static_cast<size_t>(out_features));
    to_f32(*w.bias, 0, out_features, q.bias.data());
  }
  return q;
}

void linear_quantized(const float* x, int64_t rows, int64_t in_features, const QuantizedLinear& w,
                      bool quantize_activations, float* y, ThreadPool& pool) {
  const int64_t out_features = w.weight.rows;
  const quant::ElementFormat format = w.weight.format;
  if (w.weight.cols != in_features) fail("linear_quantized: weight has {} inputs, x has {}", w.weight.cols, in_features);
  // The activations as the GEMM sees them: decode(xq) per token with its scale, or x as is.
  std::vector<float> xs(x, x + rows * in_features), row_scales(static_cast<size_t>(rows), 1.0f);
  if (quantize_activations) {
    std::vector<uint8_t> codes(static_cast<size_t>(in_features));
    for (int64_t r = 0; r < rows; ++r) {
      float* row = xs.data() + r * in_features;
      row_scales[static_cast<size_t>(r)] =
          quant::quantize_row(std::span<const float>(row, static_cast<size_t>(in_features)), format, true, codes);
      for (int64_t i = 0; i < in_features; ++i) row[i] = quant::decode(format, codes[static_cast<size_t>(i)]);
    }
  }
  pool.parallel_for(static_cast<size_t>(out_features), [&](size_t begin, size_t end) {
    std::vector<float> weight_row(static_cast<size_t>(in_features));
    for (size_t n = begin; n < end; ++n) {
      const uint8_t* codes = w.weight.codes.data() + n * static_cast<size_t>(in_features);
      for (int64_t i = 0; i < in_features; ++i) weight_row[static_cast<size_t>(i)] = quant::decode(format, codes[i]);
      const float s_w = w.weight.scales[n], b = w.bias.empty() ? 0.0f : w.bias[n];
      for (int64_t r = 0; r < rows; ++r)
        y[r * out_features + static_cast<int64_t>(n)] =
            dot(xs.data() + r * in_features, weight_row.data(), in_features) * row_scales[static_cast<size_t>(r)] * s_w + b;
    }
  });
}

void apply_rope(std::span<const int32_t> positions, float* x, int64_t num_heads, int64_t head_dim,
                const std::vector<float>& inv_freq, ThreadPool& pool) {
  const int64_t half = head_dim / 2;
  pool.parallel_for(positions.size(), [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) {
      const float position = static_cast<float>(positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = position * inv_freq[static_cast<size_t>(i)];
        const float c = std::cos(angle), s = std::sin(angle);
        for (int64_t h = 0; h < num_heads; ++h) {
          float* head = x + (static_cast<int64_t>(t) * num_heads + h) * head_dim;
          const float a = head[i], b = head[i + half];
          head[i] = a * c - b * s;
          head[i + half] = b * c + a * s;
        }
      }
    }
  });
}

}  // namespace iol::backend::cpu
