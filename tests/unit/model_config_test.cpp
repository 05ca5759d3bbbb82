#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/model/model_config.hpp"
#include "iol/model/presets.hpp"

namespace iol::model {
namespace {

std::string error_of(const std::string& text) {
  try {
    ModelConfig::from_json_text(text, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kLlama31Hf4 = R"({
  "architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 4096,
  "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
  "num_key_value_heads": 8, "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0, "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
  "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "tie_word_embeddings": false,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16"})";

TEST(ModelConfig, ParsesTransformers4Llama31) {
  ModelConfig c = ModelConfig::from_json_text(kLlama31Hf4, "cfg.json");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.rope.type, RopeType::Llama3);
  EXPECT_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_FALSE(c.qkv_bias);
  // Published size: 8.03 B parameters.
  EXPECT_NEAR(static_cast<double>(c.num_parameters()) / 1e9, 8.03, 0.01);
}

TEST(ModelConfig, ParsesTransformers5RopeParametersAndLayerTypes) {
  auto j = nlohmann::json::parse(kLlama31Hf4);
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  j["layer_types"] = std::vector<std::string>(32, "full_attention");
  j["dtype"] = "float16";
  j.erase("torch_dtype");
  ModelConfig c = ModelConfig::from_json(j, "cfg.json");
  EXPECT_EQ(c.rope.type, RopeType::Llama3);
  EXPECT_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.dtype, DType::F16);
  EXPECT_EQ(c.layer_sliding_window, std::vector<int64_t>(32, 0));
}

TEST(ModelConfig, QwenHasQkvBiasAndMistralSlidingWindow) {
  auto j = nlohmann::json::parse(kLlama31Hf4);
  j["architectures"] = {"Qwen2ForCausalLM"};
  EXPECT_TRUE(ModelConfig::from_json(j, "q").qkv_bias);
  j["architectures"] = {"MistralForCausalLM"};
  j["sliding_window"] = 4096;
  ModelConfig mistral = ModelConfig::from_json(j, "m");
  EXPECT_EQ(mistral.layer_sliding_window, std::vector<int64_t>(32, 4096));
}

TEST(ModelConfig, RoundTripsThroughToJson) {
  for (const auto& name : preset_names()) {
    ModelConfig preset = preset_or_throw(name);
    ModelConfig back = ModelConfig::from_json(preset.to_json(), name);
    EXPECT_EQ(back.to_json(), preset.to_json()) << name;
    EXPECT_EQ(back.num_parameters(), preset.num_parameters()) << name;
  }
}

TEST(ModelConfig, PresetsHavePublishedSizes) {
  EXPECT_NEAR(preset_or_throw("llama-3.1-70b").num_parameters() / 1e9, 70.6, 0.1);
  EXPECT_NEAR(preset_or_throw("llama-3.2-1b").num_parameters() / 1e9, 1.24, 0.01);  // tied embeddings
  EXPECT_NEAR(preset_or_throw("llama-2-7b").num_parameters() / 1e9, 6.74, 0.01);
  EXPECT_NEAR(preset_or_throw("qwen2.5-7b").num_parameters() / 1e9, 7.62, 0.01);
  EXPECT_NEAR(preset_or_throw("mistral-7b").num_parameters() / 1e9, 7.25, 0.01);
  EXPECT_THROW(preset_or_throw("gpt-5"), Error);
}

TEST(ModelConfig, BadInputErrorsNameTheKey) {
  auto with = [](const std::function<void(nlohmann::json&)>& edit) {
    auto j = nlohmann::json::parse(kLlama31Hf4);
    edit(j);
    return error_of(j.dump());
  };
  EXPECT_EQ(error_of("{\"vocab_size\": 3,"), "cfg.json: malformed JSON at byte 18: "
            "parse error at line 1, column 18: syntax error while parsing object key - "
            "unexpected end of input; expected string literal");
  EXPECT_EQ(error_of("[1, 2]"), "cfg.json: expected a JSON object at the top level");
  EXPECT_EQ(with([](auto& j) { j["architectures"] = {"GPT2LMHeadModel"}; }),
            "cfg.json: architecture 'GPT2LMHeadModel' is not supported (supported: LlamaForCausalLM, "
            "MistralForCausalLM, Qwen2ForCausalLM)");
  EXPECT_EQ(with([](auto& j) { j.erase("hidden_size"); }), "cfg.json: key 'hidden_size' is missing (required)");
  EXPECT_EQ(with([](auto& j) { j["num_hidden_layers"] = "32"; }),
            "cfg.json: key 'num_hidden_layers' must be a positive integer (got \"32\")");
  EXPECT_EQ(with([](auto& j) { j["num_key_value_heads"] = 5; }),
            "cfg.json: num_attention_heads 32 is not a multiple of num_key_value_heads 5");
  EXPECT_EQ(with([](auto& j) { j["rope_scaling"]["rope_type"] = "yarn"; }),
            "cfg.json: rope type 'yarn' in 'rope_scaling' is not supported (supported: default, linear, llama3)");
  EXPECT_EQ(with([](auto& j) { j["rope_scaling"].erase("factor"); }),
            "cfg.json: key 'rope_scaling' needs factor, low_freq_factor, high_freq_factor and "
            "original_max_position_embeddings for rope type llama3");
  EXPECT_EQ(with([](auto& j) { j["eos_token_id"] = 999999; }),
            "cfg.json: eos_token_id 999999 is outside the vocabulary [0, 128256)");
  EXPECT_EQ(with([](auto& j) { j["torch_dtype"] = "int4"; }),
            "cfg.json: key 'torch_dtype' names an unsupported dtype \"int4\" (supported: float32, float16, bfloat16)");
  EXPECT_EQ(with([](auto& j) { j["tie_word_embeddings"] = 1; }),
            "cfg.json: key 'tie_word_embeddings' must be true or false (got 1)");
  EXPECT_EQ(with([](auto& j) { j["layer_types"] = {"full_attention"}; }),
            "cfg.json: key 'layer_types' must be a list of 32 entries (num_hidden_layers)");
}

}  // namespace
}  // namespace iol::model
