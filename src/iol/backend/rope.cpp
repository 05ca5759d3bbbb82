// RoPE inverse frequencies (default, linear, llama3 scaling), as transformers computes them.
// Shared by every backend so they rotate by the same angles.
#include "iol/backend/rope.hpp"

#include <cmath>
#include <numbers>

namespace iol::backend {

std::vector<float> rope_inverse_frequencies(const model::RopeConfig& rope, int64_t head_dim) {
  std::vector<float> inv_freq(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    // transformers computes base ** (arange(0, dim, 2) / dim) in float32.
    float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[i] = 1.0f / std::pow(static_cast<float>(rope.theta), exponent);
  }
  if (rope.type == model::RopeType::Linear) {
    for (auto& f : inv_freq) f = static_cast<float>(f / rope.factor);
  } else if (rope.type == model::RopeType::Llama3) {
    // Llama 3.1: long wavelengths are divided by factor, short ones kept, the band between
    // interpolated smoothly (transformers' _compute_llama3_parameters).
    const double old_context = static_cast<double>(rope.original_max_position_embeddings);
    const double low_freq_wavelen = old_context / rope.low_freq_factor;
    const double high_freq_wavelen = old_context / rope.high_freq_factor;
    for (auto& f : inv_freq) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
      float scaled = wavelen > low_freq_wavelen ? static_cast<float>(f / rope.factor) : f;
      bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        float smooth = static_cast<float>((old_context / wavelen - rope.low_freq_factor) /
                                          (rope.high_freq_factor - rope.low_freq_factor));
        scaled = (1.0f - smooth) * scaled / static_cast<float>(rope.factor) + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv_freq;
}

}  // namespace iol::backend
