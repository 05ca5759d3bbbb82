#include "iol/model/model_weights.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/ranges.h>

#include "iol/core/checked_math.hpp"
#include "iol/core/error.hpp"
#include "iol/core/log.hpp"
#include "iol/core/system_memory.hpp"
#include "iol/core/rng.hpp"
#include "iol/core/thread_pool.hpp"
#include "iol/model/weight_layout.hpp"

namespace iol::model {

namespace {
std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }
}  // namespace

DummyRecipe dummy_recipe(const WeightSpec& spec, uint64_t seed) {
  // Unit-variance uniform noise scaled so activations keep their scale through each layer.
  const double kUnit = std::sqrt(3.0);
  DummyRecipe recipe;
  switch (spec.kind) {
    // Small next to the layers' outputs: with tied embeddings a large one makes the model echo its input.
    case WeightKind::Embedding: recipe.scale = 0.02 * kUnit; break;
    case WeightKind::Linear: recipe.scale = kUnit / std::sqrt(static_cast<double>(spec.shape[1])); break;
    case WeightKind::Bias: recipe.scale = 0.1; break;
    case WeightKind::Norm: recipe.scale = 0.1; recipe.offset = 1.0; break;
  }
  recipe.tensor_seed = seed ^ fnv1a64(spec.name);
  return recipe;
}

void fill_dummy_tensor(const WeightSpec& spec, uint64_t seed, DType dtype, std::span<std::byte> out) {
  size_t numel = 1;
  for (auto d : spec.shape) numel *= static_cast<size_t>(d);
  if (out.size() != numel * dtype_size(dtype)) fail("dummy weights: buffer size mismatch for '{}'", spec.name);
  const DummyRecipe recipe = dummy_recipe(spec, seed);
  const double scale = recipe.scale, offset = recipe.offset;
  const uint64_t tensor_seed = recipe.tensor_seed;
  static ThreadPool pool;
  size_t num_chunks = (numel + kDummyChunk - 1) / kDummyChunk;
  pool.parallel_for(num_chunks, [&](size_t first, size_t last) {
    for (size_t chunk = first; chunk < last; ++chunk) {
      uint64_t chunk_seed = tensor_seed + chunk * 0x9e3779b97f4a7c15ull;
      Rng rng(chunk_seed);
      size_t end = std::min(numel, (chunk + 1) * kDummyChunk);
      for (size_t i = chunk * kDummyChunk; i < end; ++i) {
        float value = static_cast<float>(offset + scale * (2.0 * rng.uniform() - 1.0));
        std::byte* p = out.data() + i * dtype_size(dtype);
        if (dtype == DType::F32) {
          std::memcpy(p, &value, 4);
        } else {
          uint16_t bits = dtype == DType::BF16 ? f32_to_bf16(value) : f32_to_f16(value);
          std::memcpy(p, &bits, 2);
        }
      }
    }
  });
}

std::shared_ptr<const ModelWeights> ModelWeights::load(const ModelConfig& config, const std::string& directory) {
  auto weights = std::shared_ptr<ModelWeights>(new ModelWeights());
  weights->checkpoint_ = Checkpoint::open(directory);
  const Checkpoint& checkpoint = *weights->checkpoint_;
  for (const auto& spec : weight_layout(config)) {
    const TensorView* view = checkpoint.find(spec.name);
    if (!view)
      fail("{}: tensor '{}' is missing (expected shape {} for {})", directory, spec.name, shape_text(spec.shape),
           config.architecture);
    if (view->shape != spec.shape)
      fail("{}: tensor '{}' has shape {}, but config.json implies {}", view->source, spec.name,
           shape_text(view->shape), shape_text(spec.shape));
    if (view->dtype != DType::F32 && view->dtype != DType::F16 && view->dtype != DType::BF16)
      fail("{}: tensor '{}' has dtype {} (supported: F32, F16, BF16)", view->source, spec.name,
           dtype_name(view->dtype));
    weights->by_name_[spec.name] = view;
  }
  // Tensors the architecture does not read: accepted (old checkpoints carry e.g. rotary inv_freq
  // buffers) but reported, since a name typo or a different architecture also looks like this.
  std::vector<std::string> unused;
  for (const auto& [name, view] : checkpoint.tensors())
    if (!weights->by_name_.count(name)) unused.push_back(name);
  if (!unused.empty()) {
    const size_t shown = std::min<size_t>(unused.size(), 3);
    warn(fmt::format("{}: {} checkpoint tensor(s) not used by {} and ignored: {}{}", directory, unused.size(),
                     config.architecture, fmt::join(unused.begin(), unused.begin() + static_cast<std::ptrdiff_t>(shown), ", "),
                     unused.size() > shown ? ", ..." : ""));
  }
  weights->bind(config);
  return weights;
}

std::shared_ptr<const ModelWeights> ModelWeights::dummy(const ModelConfig& config, uint64_t seed, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    fail("dummy weights: dtype {} is not supported (use f32, f16 or bf16)", dtype_name(dtype));
  int64_t total_bytes = 0;
  for (const auto& spec : weight_layout(config)) {
    int64_t numel = 1;
    for (auto d : spec.shape) numel = checked_product({numel, d}, "dummy weights");
    total_bytes = checked_sum({total_bytes, checked_product({numel, static_cast<int64_t>(dtype_size(dtype))}, "dummy weights")},
                              "dummy weights");
  }
  if (const int64_t physical = physical_memory_bytes(); physical > 0 && total_bytes > physical)
    fail("dummy weights: {} parameters in {} need {:.1f} GiB, more than this machine's {:.1f} GiB of memory (use a "
         "smaller preset, --dtype bf16, or the cuda backend)", config.num_parameters(), dtype_name(dtype),
         static_cast<double>(total_bytes) / (1 << 30), static_cast<double>(physical) / (1 << 30));
  auto weights = std::shared_ptr<ModelWeights>(new ModelWeights());
  for (const auto& spec : weight_layout(config)) {
    TensorView view;
    view.name = spec.name;
    view.dtype = dtype;
    view.shape = spec.shape;
    view.source = "dummy";
    view.nbytes = static_cast<size_t>(view.numel()) * dtype_size(dtype);
    weights->owned_buffers_.push_back(std::make_unique_for_overwrite<std::byte[]>(view.nbytes));
    std::byte* buffer = weights->owned_buffers_.back().get();
    fill_dummy_tensor(spec, seed, dtype, {buffer, view.nbytes});
    view.data = buffer;
    auto [it, inserted] = weights->owned_views_.emplace(spec.name, std::move(view));
    weights->by_name_[spec.name] = &it->second;
  }
  weights->bind(config);
  return weights;
}

const TensorView& ModelWeights::tensor(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) fail("model weights: no tensor '{}'", name);
  return *it->second;
}

void ModelWeights::bind(const ModelConfig& config) {
  auto get = [&](const std::string& name) { return &tensor(name); };
  auto optional = [&](const std::string& name) -> const TensorView* {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  };
  auto linear = [&](const std::string& prefix) {
    return LinearWeights{get(prefix + ".weight"), optional(prefix + ".bias")};
  };
  embed_tokens = get("model.embed_tokens.weight");
  final_norm = get("model.norm.weight");
  lm_head = config.tie_word_embeddings ? embed_tokens : get("lm_head.weight");
  layers.clear();
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    std::string layer = fmt::format("model.layers.{}", i);
    LayerWeights w;
    w.input_norm = get(layer + ".input_layernorm.weight");
    w.q_proj = linear(layer + ".self_attn.q_proj");
    w.k_proj = linear(layer + ".self_attn.k_proj");
    w.v_proj = linear(layer + ".self_attn.v_proj");
    w.o_proj = linear(layer + ".self_attn.o_proj");
    w.post_attention_norm = get(layer + ".post_attention_layernorm.weight");
    w.gate_proj = linear(layer + ".mlp.gate_proj");
    w.up_proj = linear(layer + ".mlp.up_proj");
    w.down_proj = linear(layer + ".mlp.down_proj");
    layers.push_back(w);
  }
}

}  // namespace iol::model
