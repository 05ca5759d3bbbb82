#include "iol/model/presets.hpp"

#include <fmt/ranges.h>

#include "iol/core/error.hpp"

namespace iol::model {

namespace {

ModelConfig llama(int64_t vocab, int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads,
                  int64_t kv_heads) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.rms_norm_eps = 1e-5;
  c.layer_sliding_window.assign(static_cast<size_t>(layers), 0);
  c.dtype = DType::BF16;
  return c;
}

ModelConfig llama31(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads) {
  ModelConfig c = llama(128256, hidden, intermediate, layers, heads, 8);
  c.max_position_embeddings = 131072;
  c.rope = {RopeType::Llama3, 500000.0, 8.0, 1.0, 4.0, 8192};
  c.bos_token_id = 128000;
  c.eos_token_ids = {128001, 128008, 128009};
  return c;
}

// Llama-3.2-1B: the Llama-3.1 tokenizer (so a draft for the 8B), 16 layers, head_dim 64, tied
// embeddings, llama3 RoPE scaling by 32.
ModelConfig llama32_1b() {
  ModelConfig c = llama31(2048, 8192, 16, 32);
  c.tie_word_embeddings = true;
  c.rope.factor = 32.0;
  return c;
}

ModelConfig llama2(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads, int64_t kv_heads) {
  ModelConfig c = llama(32000, hidden, intermediate, layers, heads, kv_heads);
  c.max_position_embeddings = 4096;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

ModelConfig qwen25_7b() {
  ModelConfig c = llama(152064, 3584, 18944, 28, 28, 4);
  c.architecture = "Qwen2ForCausalLM";
  c.qkv_bias = true;
  c.rms_norm_eps = 1e-6;
  c.rope.theta = 1000000.0;
  c.max_position_embeddings = 32768;
  c.bos_token_id = 151643;
  c.eos_token_ids = {151645};
  return c;
}

ModelConfig mistral_7b() {
  // Mistral-7B-v0.3: 32768-token vocabulary, no sliding window.
  ModelConfig c = llama(32768, 4096, 14336, 32, 32, 8);
  c.architecture = "MistralForCausalLM";
  c.rope.theta = 1000000.0;
  c.max_position_embeddings = 32768;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

// A few MB: GQA 4:2, head_dim 64. Ids 256.. are the synthetic tokenizer's specials (see tokenizer/).
ModelConfig tiny() {
  ModelConfig c = llama(512, 256, 768, 4, 4, 2);
  c.max_position_embeddings = 2048;
  c.bos_token_id = 256;
  c.eos_token_ids = {257};
  return c;
}

// The second parity model: q/k/v bias, llama3 RoPE scaling with a short original context so
// all three frequency bands occur at head_dim 64, tied embeddings, 4:1 GQA.
ModelConfig tiny_qwen2() {
  ModelConfig c = llama(512, 256, 512, 3, 4, 1);
  c.architecture = "Qwen2ForCausalLM";
  c.qkv_bias = true;
  c.tie_word_embeddings = true;
  c.rms_norm_eps = 1e-6;
  c.rope = {RopeType::Llama3, 10000.0, 8.0, 1.0, 4.0, 64};
  c.max_position_embeddings = 2048;
  c.bos_token_id = 256;
  c.eos_token_ids = {257};
  return c;
}

// The CUDA parity model of the Llama-3.1 shape: head_dim 128, 4:1 GQA, llama3 RoPE scaling with
// a short original context (all three bands occur within a test's positions), untied LM head.
ModelConfig tiny_llama31() {
  ModelConfig c = llama(512, 512, 1024, 2, 4, 1);
  c.rope = {RopeType::Llama3, 500000.0, 8.0, 1.0, 4.0, 64};
  c.rms_norm_eps = 1e-5;
  c.max_position_embeddings = 2048;
  c.bos_token_id = 256;
  c.eos_token_ids = {257};
  return c;
}

struct Preset {
  const char* name;
  ModelConfig (*make)();
};

const Preset kPresets[] = {
    {"tiny", tiny},
    {"tiny-qwen2", tiny_qwen2},
    {"tiny-llama3.1", tiny_llama31},
    {"llama-3.1-8b", [] { return llama31(4096, 14336, 32, 32); }},
    {"llama-3.1-70b", [] { return llama31(8192, 28672, 80, 64); }},
    {"llama-3.2-1b", llama32_1b},
    {"llama-2-7b", [] { return llama2(4096, 11008, 32, 32, 32); }},
    {"llama-2-70b", [] { return llama2(8192, 28672, 80, 64, 8); }},
    {"qwen2.5-7b", qwen25_7b},
    {"mistral-7b", mistral_7b},
};

}  // namespace

std::optional<ModelConfig> find_preset(std::string_view name) {
  for (const auto& preset : kPresets)
    if (name == preset.name) {
      ModelConfig config = preset.make();
      config.validate(fmt::format("preset '{}'", name));
      return config;
    }
  return std::nullopt;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& preset : kPresets) names.emplace_back(preset.name);
  return names;
}

ModelConfig preset_or_throw(std::string_view name) {
  auto config = find_preset(name);
  if (!config) fail("unknown preset '{}' (known: {})", name, fmt::join(preset_names(), ", "));
  return *config;
}

}  // namespace iol::model
