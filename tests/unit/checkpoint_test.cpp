// Loading HF model directories: single file, sharded, and every way one can be broken.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../support/temp_dir.hpp"
#include "iol/core/error.hpp"
#include "iol/model/model_source.hpp"
#include "iol/model/presets.hpp"
#include "iol/model/weight_layout.hpp"

namespace iol::model {
namespace {

namespace fs = std::filesystem;

std::string load_error(const std::string& dir) {
  try {
    ModelSource source;
    source.model_dir = dir;
    load_model(source);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void write_tiny(const std::string& dir, DType dtype = DType::BF16) {
  ModelConfig config = preset_or_throw("tiny");
  config.dtype = dtype;
  write_model_directory(config, *ModelWeights::dummy(config, 3, dtype), dir);
}

TEST(Checkpoint, DummyWeightsAreDeterministicAndEqualTheWrittenCheckpoint) {
  testing::TempDir dir;
  write_tiny(dir.str());
  ModelSource source;
  source.model_dir = dir.str();
  LoadedModel from_disk = load_model(source);
  auto dummy = ModelWeights::dummy(from_disk.config, 3, DType::BF16);
  for (const auto& [name, view] : from_disk.weights->all()) {
    const TensorView& other = dummy->tensor(name);
    ASSERT_EQ(view->nbytes, other.nbytes) << name;
    ASSERT_EQ(std::memcmp(view->data, other.data, view->nbytes), 0) << name;
  }
  auto different_seed = ModelWeights::dummy(from_disk.config, 4, DType::BF16);
  EXPECT_NE(std::memcmp(dummy->embed_tokens->data, different_seed->embed_tokens->data, dummy->embed_tokens->nbytes), 0);
}

TEST(Checkpoint, LoadsF32AndF16Checkpoints) {
  for (DType dtype : {DType::F32, DType::F16}) {
    testing::TempDir dir;
    write_tiny(dir.str(), dtype);
    ModelSource source;
    source.model_dir = dir.str();
    LoadedModel loaded = load_model(source);
    EXPECT_EQ(loaded.weights->embed_tokens->dtype, dtype);
    // Same seed in another dtype: values agree to the coarser format's precision.
    auto bf16 = ModelWeights::dummy(loaded.config, 3, DType::BF16);
    for (size_t i = 0; i < 100; ++i)
      EXPECT_NEAR(loaded.weights->embed_tokens->get(i), bf16->embed_tokens->get(i), 1e-3);
  }
}

TEST(Checkpoint, LoadsShardedCheckpoints) {
  testing::TempDir dir;
  write_tiny(dir.str());
  ModelConfig config = preset_or_throw("tiny");
  auto weights = ModelWeights::dummy(config, 3, DType::BF16);
  // Re-write as two shards plus an index.
  std::vector<TensorToWrite> first, second;
  nlohmann::json weight_map;
  int i = 0;
  for (const auto& spec : weight_layout(config)) {
    const TensorView& view = weights->tensor(spec.name);
    bool in_first = (i++ % 2) == 0;
    (in_first ? first : second).push_back({spec.name, view.dtype, view.shape, {view.data, view.nbytes}});
    weight_map[spec.name] = in_first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  fs::remove(dir.path() / "model.safetensors");
  write_safetensors(dir.str("model-00001-of-00002.safetensors"), first);
  write_safetensors(dir.str("model-00002-of-00002.safetensors"), second);
  std::ofstream(dir.str("model.safetensors.index.json")) << nlohmann::json{{"weight_map", weight_map}}.dump();
  ModelSource source;
  source.model_dir = dir.str();
  LoadedModel loaded = load_model(source);
  EXPECT_EQ(std::memcmp(loaded.weights->lm_head->data, weights->lm_head->data, weights->lm_head->nbytes), 0);

  // A shard named in the index but absent.
  weight_map["model.norm.weight"] = "model-00003-of-00002.safetensors";
  std::ofstream(dir.str("model.safetensors.index.json")) << nlohmann::json{{"weight_map", weight_map}}.dump();
  EXPECT_EQ(load_error(dir.str()), dir.str("model.safetensors.index.json") +
                                       ": shard 'model-00003-of-00002.safetensors' (holding 'model.norm.weight') does not exist");
  weight_map["model.norm.weight"] = "../escape.safetensors";
  std::ofstream(dir.str("model.safetensors.index.json")) << nlohmann::json{{"weight_map", weight_map}}.dump();
  EXPECT_EQ(load_error(dir.str()), dir.str("model.safetensors.index.json") +
                                       ": weight_map entry 'model.norm.weight' names '../escape.safetensors', which is not a file in the model directory");
}

TEST(Checkpoint, BrokenDirectoriesGiveOneLineErrors) {
  testing::TempDir dir;
  EXPECT_EQ(load_error(dir.str("missing")), dir.str("missing") + ": not a directory");
  EXPECT_EQ(load_error(dir.str()), dir.str("config.json") +
                                       ": cannot open (is this a Hugging Face model directory with a config.json?)");
  write_tiny(dir.str());
  const std::string weights_path = dir.str("model.safetensors");

  // Truncated file: header intact, data cut short.
  auto size = fs::file_size(weights_path);
  fs::resize_file(weights_path, size - 100);
  std::string truncated = load_error(dir.str());
  EXPECT_NE(truncated.find(weights_path + ": tensor '"), std::string::npos) << truncated;
  EXPECT_NE(truncated.find("are outside the data section"), std::string::npos) << truncated;

  // Missing tensor and wrong shape: rewrite with one tensor dropped / reshaped.
  ModelConfig config = preset_or_throw("tiny");
  auto weights = ModelWeights::dummy(config, 3, DType::BF16);
  std::vector<TensorToWrite> tensors;
  for (const auto& spec : weight_layout(config)) {
    const TensorView& view = weights->tensor(spec.name);
    if (spec.name == "model.layers.1.mlp.up_proj.weight") continue;
    tensors.push_back({spec.name, view.dtype, view.shape, {view.data, view.nbytes}});
  }
  write_safetensors(weights_path, tensors);
  EXPECT_EQ(load_error(dir.str()), dir.str() + ": tensor 'model.layers.1.mlp.up_proj.weight' is missing "
                                               "(expected shape [768, 256] for LlamaForCausalLM)");
  auto rewrite_with = [&](const std::string& name, DType dtype, std::vector<int64_t> shape, size_t nbytes) {
    std::vector<TensorToWrite> edited;
    for (const auto& spec : weight_layout(config)) {
      const TensorView& view = weights->tensor(spec.name);
      edited.push_back({spec.name, view.dtype, view.shape, {view.data, view.nbytes}});
      if (spec.name == name) edited.back() = {spec.name, dtype, std::move(shape), {view.data, nbytes}};
    }
    write_safetensors(weights_path, edited);
  };
  rewrite_with("lm_head.weight", DType::BF16, {512, 2, 128}, 512 * 256 * 2);  // same bytes, wrong shape
  EXPECT_EQ(load_error(dir.str()), weights_path + ": tensor 'lm_head.weight' has shape [512, 2, 128], but "
                                                  "config.json implies [512, 256]");
  rewrite_with("model.norm.weight", DType::I8, {256}, 256);  // right shape, integer dtype
  EXPECT_EQ(load_error(dir.str()), weights_path + ": tensor 'model.norm.weight' has dtype I8 (supported: F32, F16, BF16)");

  fs::remove(weights_path);
  EXPECT_EQ(load_error(dir.str()), dir.str() + ": no model.safetensors or model.safetensors.index.json "
                                               "(use --load-format dummy for random weights)");
  std::ofstream(dir.str("config.json")) << "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": ";
  EXPECT_NE(load_error(dir.str()).find(dir.str("config.json") + ": malformed JSON at byte"), std::string::npos);
}

}  // namespace
}  // namespace iol::model
