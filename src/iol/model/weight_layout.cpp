#include "iol/model/weight_layout.hpp"

#include <fmt/format.h>

namespace iol::model {

std::vector<WeightSpec> weight_layout(const ModelConfig& c) {
  std::vector<WeightSpec> specs;
  auto add = [&](std::string name, std::vector<int64_t> shape, WeightKind kind) {
    specs.push_back({std::move(name), std::move(shape), kind});
  };
  auto linear = [&](const std::string& prefix, int64_t out, int64_t in, bool bias) {
    add(prefix + ".weight", {out, in}, WeightKind::Linear);
    if (bias) add(prefix + ".bias", {out}, WeightKind::Bias);
  };
  add("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, WeightKind::Embedding);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    std::string layer = fmt::format("model.layers.{}", i);
    add(layer + ".input_layernorm.weight", {c.hidden_size}, WeightKind::Norm);
    linear(layer + ".self_attn.q_proj", c.q_size(), c.hidden_size, c.qkv_bias);
    linear(layer + ".self_attn.k_proj", c.kv_size(), c.hidden_size, c.qkv_bias);
    linear(layer + ".self_attn.v_proj", c.kv_size(), c.hidden_size, c.qkv_bias);
    linear(layer + ".self_attn.o_proj", c.hidden_size, c.q_size(), c.o_bias);
    add(layer + ".post_attention_layernorm.weight", {c.hidden_size}, WeightKind::Norm);
    linear(layer + ".mlp.gate_proj", c.intermediate_size, c.hidden_size, c.mlp_bias);
    linear(layer + ".mlp.up_proj", c.intermediate_size, c.hidden_size, c.mlp_bias);
    linear(layer + ".mlp.down_proj", c.hidden_size, c.intermediate_size, c.mlp_bias);
  }
  add("model.norm.weight", {c.hidden_size}, WeightKind::Norm);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, c.hidden_size}, WeightKind::Linear);
  return specs;
}

}  // namespace iol::model
