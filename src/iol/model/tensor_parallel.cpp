#include "iol/model/tensor_parallel.hpp"

#include <algorithm>
#include <cstring>

#include "iol/core/error.hpp"

namespace iol::model {

TensorParallelShape tensor_parallel_shape(const ModelConfig& config, int rank, int world) {
  if (world < 1) fail("tensor parallel: world size {} must be >= 1", world);
  if (rank < 0 || rank >= world) fail("tensor parallel: rank {} outside [0, {})", rank, world);
  const int64_t heads = config.num_attention_heads, kv_heads = config.num_key_value_heads;
  if (heads % world != 0)
    fail("tensor parallel: {} attention heads do not divide over {} ranks", heads, world);
  if (kv_heads % world != 0 && world % kv_heads != 0)
    fail("tensor parallel: {} KV heads neither divide over {} ranks nor replicate evenly onto them", kv_heads, world);
  if (config.intermediate_size % world != 0)
    fail("tensor parallel: intermediate size {} does not divide over {} ranks", config.intermediate_size, world);
  TensorParallelShape s;
  s.rank = rank;
  s.world = world;
  s.heads = heads / world;
  s.head_begin = rank * s.heads;
  if (kv_heads >= world) {
    s.kv_heads = kv_heads / world;
    s.kv_head_begin = rank * s.kv_heads;
  } else {
    // world / kv_heads consecutive ranks share a KV head: the one their query heads read.
    s.kv_heads = 1;
    s.kv_head_begin = rank / (world / kv_heads);
  }
  s.intermediate = config.intermediate_size / world;
  s.intermediate_begin = rank * s.intermediate;
  const int64_t per_rank = (config.vocab_size + world - 1) / world;
  s.vocab_begin = std::min<int64_t>(config.vocab_size, rank * per_rank);
  s.vocab = std::min<int64_t>(config.vocab_size, s.vocab_begin + per_rank) - s.vocab_begin;
  return s;
}

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ShardSlice shard_slice(const std::string& name, const ModelConfig& config, const TensorParallelShape& s) {
  const int64_t d = config.head_dim;
  const bool weight = ends_with(name, ".weight"), bias = ends_with(name, ".bias");
  const auto rows = [](int64_t begin, int64_t count) { return ShardSlice{ShardAxis::Rows, begin, count}; };
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return rows(s.vocab_begin, s.vocab);
  if (ends_with(name, "norm.weight")) return {};
  if (weight || bias) {
    const std::string stem = name.substr(0, name.size() - (weight ? 7 : 5));
    if (ends_with(stem, ".self_attn.q_proj")) return rows(s.head_begin * d, s.heads * d);
    if (ends_with(stem, ".self_attn.k_proj") || ends_with(stem, ".self_attn.v_proj"))
      return rows(s.kv_head_begin * d, s.kv_heads * d);
    if (ends_with(stem, ".mlp.gate_proj") || ends_with(stem, ".mlp.up_proj"))
      return rows(s.intermediate_begin, s.intermediate);
    // Row-parallel: the weight's input columns split; the bias is added once after the all-reduce.
    if (ends_with(stem, ".self_attn.o_proj"))
      return bias ? ShardSlice{} : ShardSlice{ShardAxis::Columns, s.head_begin * d, s.heads * d};
    if (ends_with(stem, ".mlp.down_proj"))
      return bias ? ShardSlice{} : ShardSlice{ShardAxis::Columns, s.intermediate_begin, s.intermediate};
  }
  fail("tensor parallel: no sharding rule for tensor '{}'", name);
}

namespace {

// Rows and row bytes of a tensor seen as [dim 0][everything else].
struct Matrix {
  int64_t rows, columns;
  size_t element;
};
Matrix matrix_of(const std::vector<int64_t>& shape, DType dtype) {
  int64_t columns = 1;
  for (size_t i = 1; i < shape.size(); ++i) columns *= shape[i];
  return {shape.empty() ? 1 : shape[0], columns, dtype_size(dtype)};
}

void check_slice(const std::string& name, const ShardSlice& slice, const Matrix& m) {
  const int64_t extent = slice.axis == ShardAxis::Rows ? m.rows : m.columns;
  if (slice.axis != ShardAxis::Replicated && (slice.begin < 0 || slice.count < 0 || slice.begin + slice.count > extent))
    fail("tensor parallel: slice [{}, {}) of '{}' exceeds its {} {}", slice.begin, slice.begin + slice.count, name,
         extent, slice.axis == ShardAxis::Rows ? "rows" : "columns");
}

}  // namespace

TensorView TensorShard::view() const {
  TensorView v;
  v.name = name;
  v.dtype = dtype;
  v.shape = shape;
  v.data = data.data();
  v.nbytes = data.size();
  v.source = "tensor-parallel shard";
  return v;
}

TensorShard shard_tensor(const TensorView& tensor, const ShardSlice& slice) {
  const Matrix m = matrix_of(tensor.shape, tensor.dtype);
  check_slice(tensor.name, slice, m);
  TensorShard shard{tensor.name, tensor.dtype, tensor.shape, {}};
  const size_t row_bytes = static_cast<size_t>(m.columns) * m.element;
  switch (slice.axis) {
    case ShardAxis::Replicated:
      shard.data.assign(tensor.data, tensor.data + tensor.nbytes);
      break;
    case ShardAxis::Rows:
      shard.shape[0] = slice.count;
      shard.data.assign(tensor.data + static_cast<size_t>(slice.begin) * row_bytes,
                        tensor.data + static_cast<size_t>(slice.begin + slice.count) * row_bytes);
      break;
    case ShardAxis::Columns: {
      if (tensor.shape.size() != 2) fail("tensor parallel: '{}' is not a matrix; its columns cannot be split", tensor.name);
      shard.shape[1] = slice.count;
      const size_t piece = static_cast<size_t>(slice.count) * m.element;
      shard.data.resize(static_cast<size_t>(m.rows) * piece);
      for (int64_t r = 0; r < m.rows; ++r)
        std::memcpy(shard.data.data() + static_cast<size_t>(r) * piece,
                    tensor.data + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(slice.begin) * m.element, piece);
      break;
    }
  }
  return shard;
}

std::vector<std::byte> reassemble_tensor(const std::vector<const TensorShard*>& shards,
                                         const std::vector<ShardSlice>& slices, const std::vector<int64_t>& full_shape) {
  if (shards.empty() || shards.size() != slices.size()) fail("tensor parallel: reassembly needs one slice per shard");
  const TensorShard& first = *shards[0];
  const Matrix m = matrix_of(full_shape, first.dtype);
  const size_t row_bytes = static_cast<size_t>(m.columns) * m.element;
  if (slices[0].axis == ShardAxis::Replicated) return first.data;
  std::vector<std::byte> full(static_cast<size_t>(m.rows) * row_bytes);
  const int64_t extent = slices[0].axis == ShardAxis::Rows ? m.rows : m.columns;
  std::vector<bool> covered(static_cast<size_t>(extent), false);
  for (size_t i = 0; i < shards.size(); ++i) {
    const ShardSlice& s = slices[i];
    check_slice(first.name, s, m);
    const TensorShard& shard = *shards[i];
    if (s.axis == ShardAxis::Rows) {
      if (shard.data.size() != static_cast<size_t>(s.count) * row_bytes) fail("tensor parallel: shard {} of '{}' has the wrong size", i, first.name);
      std::memcpy(full.data() + static_cast<size_t>(s.begin) * row_bytes, shard.data.data(), shard.data.size());
    } else {
      const size_t piece = static_cast<size_t>(s.count) * m.element;
      if (shard.data.size() != static_cast<size_t>(m.rows) * piece) fail("tensor parallel: shard {} of '{}' has the wrong size", i, first.name);
      for (int64_t r = 0; r < m.rows; ++r)
        std::memcpy(full.data() + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(s.begin) * m.element,
                    shard.data.data() + static_cast<size_t>(r) * piece, piece);
    }
    std::fill(covered.begin() + s.begin, covered.begin() + s.begin + s.count, true);
  }
  if (std::find(covered.begin(), covered.end(), false) != covered.end())
    fail("tensor parallel: the shards of '{}' do not cover it", first.name);
  return full;
}

const TensorView& RankWeights::view(const std::string& name) const {
  auto it = views_.find(name);
  if (it != views_.end()) return it->second;
  auto shard = shards.find(name);
  if (shard == shards.end()) fail("tensor parallel: rank {} holds no tensor '{}'", shape.rank, name);
  return views_.emplace(name, shard->second.view()).first->second;
}

RankWeights shard_weights(const ModelConfig& config, const std::map<std::string, const TensorView*>& tensors, int rank,
                          int world) {
  RankWeights out;
  out.shape = tensor_parallel_shape(config, rank, world);
  for (const auto& [name, tensor] : tensors)
    out.shards.emplace(name, shard_tensor(*tensor, shard_slice(name, config, out.shape)));
  return out;
}

}  // namespace iol::model
