// ModelConfig: the architecture hyper-parameters read from a Hugging Face config.json.
// Accepts what transformers 4.x writes (rope_theta, rope_scaling) and 5.x (rope_parameters,
// layer_types). Unsupported architectures or RoPE types fail with an error naming them.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "iol/core/dtype.hpp"

namespace iol::model {

// Token ids are int32 everywhere; a sequence's length must index positions in int32 too.
inline constexpr int64_t kMaxVocabSize = int64_t{1} << 24;
inline constexpr int64_t kMaxModelLen = int64_t{1} << 24;

enum class RopeType { Default, Linear, Llama3 };

struct RopeConfig {
  RopeType type = RopeType::Default;
  double theta = 10000.0;
  double factor = 1.0;                            // linear and llama3
  double low_freq_factor = 1.0;                   // llama3
  double high_freq_factor = 4.0;                  // llama3
  int64_t original_max_position_embeddings = 0;   // llama3
};

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;   // Qwen2 always; Llama with attention_bias
  bool o_bias = false;     // Llama with attention_bias
  bool mlp_bias = false;   // Llama with mlp_bias
  // Per-layer sliding window in tokens (0 = full attention), from sliding_window/layer_types.
  std::vector<int64_t> layer_sliding_window;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  DType dtype = DType::BF16;  // torch_dtype / dtype: the checkpoint's storage type

  // Parses config.json text; `source` (a path) prefixes every error message.
  static ModelConfig from_json_text(std::string_view text, const std::string& source);
  static ModelConfig from_json(const nlohmann::json& json, const std::string& source);
  static ModelConfig from_file(const std::string& path);
  // HF config.json content (transformers 4.x style, which 5.x also reads).
  nlohmann::json to_json() const;

  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }
  // Parameters of the model (embedding and LM head counted once when tied).
  int64_t num_parameters() const;
  // Throws iol::Error (prefixed by source) when the numbers are inconsistent.
  void validate(const std::string& source) const;
};

std::vector<std::string_view> supported_architectures();

}  // namespace iol::model
