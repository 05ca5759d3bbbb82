// ModelWeights: every tensor of a Llama-family model as validated views, either into a
// memory-mapped checkpoint or into seeded random buffers (--load-format dummy).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "iol/model/checkpoint.hpp"
#include "iol/model/model_config.hpp"

namespace iol::model {

struct LinearWeights {
  const TensorView* weight = nullptr;  // [out_features, in_features]
  const TensorView* bias = nullptr;    // [out_features] or null
};

struct LayerWeights {
  const TensorView* input_norm = nullptr;
  LinearWeights q_proj, k_proj, v_proj, o_proj;
  const TensorView* post_attention_norm = nullptr;
  LinearWeights gate_proj, up_proj, down_proj;
};

class ModelWeights {
 public:
  // Loads and validates names, shapes and dtypes against the config; no tensor data is copied.
  static std::shared_ptr<const ModelWeights> load(const ModelConfig& config, const std::string& directory);
  // Seeded random weights in `dtype` (F32, F16 or BF16): the same seed gives the same bytes everywhere.
  static std::shared_ptr<const ModelWeights> dummy(const ModelConfig& config, uint64_t seed, DType dtype);

  const TensorView& tensor(const std::string& name) const;
  const std::map<std::string, const TensorView*>& all() const { return by_name_; }

  const TensorView* embed_tokens = nullptr;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  const TensorView* final_norm = nullptr;
  const TensorView* lm_head = nullptr;       // embed_tokens when tied

 private:
  void bind(const ModelConfig& config);

  std::shared_ptr<Checkpoint> checkpoint_;
  std::vector<std::unique_ptr<std::byte[]>> owned_buffers_;
  std::map<std::string, TensorView> owned_views_;
  std::map<std::string, const TensorView*> by_name_;
};

// How dummy tensor values are drawn: element i of chunk c (kDummyChunk elements each) is
// offset + scale * (2u - 1), u the next Rng(tensor_seed + c * 0x9e3779b97f4a7c15).uniform() of
// that chunk's generator, computed in double and rounded to the dtype. The CUDA backend draws the
// same values on the device (backend/cuda/kernels/dummy_weights.cu).
inline constexpr size_t kDummyChunk = size_t{1} << 20;
struct DummyRecipe {
  double scale = 0.0, offset = 0.0;
  uint64_t tensor_seed = 0;
};
DummyRecipe dummy_recipe(const struct WeightSpec& spec, uint64_t seed);

// Fills `out` (numel elements of dtype) with the dummy values of one tensor (see ModelWeights::dummy).
void fill_dummy_tensor(const struct WeightSpec& spec, uint64_t seed, DType dtype, std::span<std::byte> out);

}  // namespace iol::model
