#include "iol/backend/cuda/cuda_backend.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <thread>

#include "iol/backend/cuda/cublaslt_gemm.hpp"
#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/device_buffer.hpp"
#include "iol/backend/cuda/hardware_ceilings.cuh"
#include "iol/backend/cuda/kernels/dummy_weights.cuh"
#include "iol/backend/cuda/kernels/elementwise.cuh"
#include "iol/backend/cuda/kernels/gemv.cuh"
#include "iol/backend/cuda/kernels/paged_attention.cuh"
#include "iol/backend/cuda/kernels/quantize.cuh"
#include "iol/backend/cuda/kernels/sampler.cuh"
#include "iol/backend/rope.hpp"
#include "iol/core/dtype.hpp"
#include "iol/core/error.hpp"
#include "iol/model/weight_layout.hpp"
#include "iol/quant/codec.hpp"
#include "iol/spec/verifier.hpp"

namespace iol::backend::cuda {

namespace {

using bf16 = __nv_bfloat16;
constexpr int kMaxDecodeSplits = 32;  // flash-decoding partitions per sequence at most

// Decode steps of up to this many sequences replay a CUDA graph of the next bucket up
// (1, 2, 4, 8, then multiples of 8, as vLLM does); larger ones run eagerly.
std::vector<int> graph_buckets(int64_t max_num_seqs) {
  std::vector<int> buckets;
  for (int b : {1, 2, 4}) if (b <= max_num_seqs) buckets.push_back(b);
  for (int b = 8; b <= max_num_seqs; b += 8) buckets.push_back(b);
  if (buckets.empty() || buckets.back() != max_num_seqs) buckets.push_back(static_cast<int>(max_num_seqs));
  return buckets;
}

size_t align_up(size_t bytes, size_t alignment = 256) { return (bytes + alignment - 1) / alignment * alignment; }

}  // namespace

struct CudaBackend::Impl {
  model::ModelConfig config;
  CudaBackendOptions options;
  KvCacheSpec kv_spec;
  double load_seconds = 0;
  cudaStream_t stream = nullptr;
  std::unique_ptr<CublasLtGemm> gemm;
  // Timing events around each execute(): [0] its start, [1] its end, [2] the previous end.
  cudaEvent_t step_events[3] = {nullptr, nullptr, nullptr};
  bool has_previous_step = false;
  DeviceTimeline timeline;

  // Sizes.
  int64_t hidden = 0, q_size = 0, kv_size = 0, qkv_size = 0, inter = 0, vocab = 0, head_dim = 0;
  int64_t max_tokens = 0;        // tokens per step at most (max(max_num_batched_tokens, max_num_seqs))
  int64_t max_seqs = 0;          // sequences per step at most
  // Sampling rows per step at most: max_seqs, or more when speculative runs verify k + 1 rows
  // per sequence (CudaBackendOptions::max_speculative_tokens).
  int64_t max_rows = 0;
  int64_t max_logits_rows = 0;   // logits rows per step at most (>= max_rows)
  int gemv_max_rows = 1;         // steps of at most this many tokens run the decode GEMV
  std::vector<float> verify_logits;  // host copy of one logits row for the speculative verifier
  int64_t max_blocks_per_seq = 0;
  int64_t max_sampling_tokens = 0;

  // Weights: one allocation; views into it. With a quantization scheme the decoder layers' linear
  // weights live instead in quant_weights as 8-bit codes with one fp32 scale per output row.
  struct Linear {
    const bf16* w = nullptr;        // bf16 weight [n][k], or null when quantized
    const uint8_t* q = nullptr;     // 8-bit codes [n][k]
    const float* scale = nullptr;   // [n]
    const bf16* bias = nullptr;     // [n] or null
  };
  struct LayerView {
    const bf16 *input_norm, *post_norm;
    Linear qkv, o, gate_up, down;
  };
  DeviceBuffer weights, quant_weights;
  std::vector<LayerView> layers;
  // A fused bf16 linear weight on its way to quantization (load time); kept for INT8 weight-only
  // steps above the GEMV's sizes, which dequantize each layer into it for a bf16 GEMM.
  DeviceBuffer weight_scratch;
  // FP8 GEMM steps: the per-token quantized activations and their scales; fp32 sums where
  // cuBLASLt has no scale-vector epilogue.
  DeviceBuffer act_codes, act_scales, gemm_scratch;
  bool fp8_outer_vector = false;

  bool quantized() const { return options.quantization != quant::QuantScheme::None; }
  kernels::QuantFormat quant_format() const {
    return options.quantization == quant::QuantScheme::Fp8 ? kernels::QuantFormat::Fp8E4M3 : kernels::QuantFormat::Int8;
  }
  const bf16 *embed = nullptr, *final_norm = nullptr, *lm_head = nullptr;

  // KV pool: [layer][block][block_size][kv_heads][head_dim], K and V.
  DeviceBuffer k_cache, v_cache;
  int64_t layer_stride = 0;  // elements per layer
  // The KV cache's element type (bf16, or E4M3 codes at scale 1 with --kv-cache-dtype fp8).
  kernels::KvCacheFormat kv_format = kernels::KvCacheFormat::Bf16;
  size_t kv_element_bytes() const { return kernels::kv_element_bytes(kv_format); }
  char* k_layer(int64_t layer) const { return k_cache.as<char>() + layer * layer_stride * kv_element_bytes(); }
  char* v_layer(int64_t layer) const { return v_cache.as<char>() + layer * layer_stride * kv_element_bytes(); }

  // Activations, sized for max_tokens rows.
  DeviceBuffer residual, normed, qkv, attn_out, proj, gate_up, act, final_rows, logits, inv_freq;
  DeviceBuffer decode_workspace, sampler_workspace;

  // Step metadata: device arrays at fixed addresses (CUDA graphs read them) and pinned staging.
  struct Metadata {
    int32_t* token_ids; int32_t* positions; int64_t* slot_mapping; int32_t* query_start_loc; int32_t* context_lens;
    int32_t* block_tables; int32_t* logits_indices; int32_t* decode_seqs; int32_t* prefill_seqs;
    sampling::SamplingRow* rows; int32_t* sampling_tokens; int32_t* block_copies;
  };
  DeviceBuffer metadata_device;
  PinnedBuffer metadata_host;
  Metadata device_meta{}, host_meta{};
  size_t metadata_bytes = 0;

  // Sampler output, device and pinned host.
  DeviceBuffer out_device;
  PinnedBuffer out_host;
  int32_t *out_tokens_d = nullptr, *out_top_ids_d = nullptr;
  float *out_logprobs_d = nullptr, *out_top_logprobs_d = nullptr;

  // CUDA graphs of decode-only steps, by padded batch size.
  std::vector<int> buckets;
  std::map<int, cudaGraphExec_t> graphs;

  Impl(const model::ModelConfig& c, const CudaBackendOptions& o) : config(c), options(o) {
    if (config.head_dim != 64 && config.head_dim != 128)
      fail("cuda backend: head_dim {} is not supported (64 or 128)", config.head_dim);
    if (options.block_size <= 0) fail("cuda backend: block_size must be positive");
    if (options.max_num_seqs <= 0 || options.max_num_batched_tokens <= 0)
      fail("cuda backend: max_num_seqs and max_num_batched_tokens must be positive");
    IOL_CUDA_CHECK(cudaSetDevice(options.device));
    IOL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    for (auto& e : step_events) IOL_CUDA_CHECK(cudaEventCreate(&e));
    hidden = config.hidden_size;
    q_size = config.q_size();
    kv_size = config.kv_size();
    qkv_size = q_size + 2 * kv_size;
    inter = config.intermediate_size;
    vocab = config.vocab_size;
    head_dim = config.head_dim;
    if (options.max_model_len <= 0) options.max_model_len = config.max_position_embeddings;
    max_seqs = options.max_num_seqs;
    max_tokens = std::max(options.max_num_batched_tokens, max_seqs);
    const int64_t speculating_seqs =
        options.speculative_max_batch > 0 ? std::min(max_seqs, options.speculative_max_batch) : max_seqs;
    max_rows = std::max(max_seqs, speculating_seqs * (1 + options.max_speculative_tokens));
    max_logits_rows = std::max(max_rows, std::min(options.max_logits_rows, max_tokens));
    max_blocks_per_seq = (options.max_model_len + options.block_size - 1) / options.block_size;
    gemv_max_rows = options.gemv_max_rows > 0 ? std::min(options.gemv_max_rows, kernels::kMaxGemvRows)
                    : options.quantization == quant::QuantScheme::None ? 1
                                                                       : kernels::kMaxGemvRows;
    // Penalty rows upload their prompt and output ids; masked ids are few.
    max_sampling_tokens = max_seqs * (options.max_model_len + 64);
    gemm = std::make_unique<CublasLtGemm>();
  }

  ~Impl() {
    for (auto& [size, graph] : graphs) cudaGraphExecDestroy(graph);
    for (auto& e : step_events)
      if (e) cudaEventDestroy(e);
    if (stream) cudaStreamDestroy(stream);
  }

  // ---- weights ---------------------------------------------------------------------------

  // Byte offsets of every tensor in the one weight allocation, in weight_layout order, with q/k/v
  // and gate/up placed back to back so each pair forms one fused matrix.
  struct Placement {
    size_t offset;
    size_t numel;
  };
  std::map<std::string, Placement> plan_weights(size_t& total_bytes) const {
    std::map<std::string, Placement> placement;
    size_t offset = 0;
    auto place = [&](const std::string& name, size_t numel) {
      if (quantized() && is_quantized_linear(name)) return;  // in quant_weights instead
      placement[name] = {offset, numel};
      offset += numel * sizeof(bf16);
    };
    auto numel_of = [](const model::WeightSpec& spec) {
      size_t n = 1;
      for (auto d : spec.shape) n *= static_cast<size_t>(d);
      return n;
    };
    std::map<std::string, size_t> sizes;
    for (const auto& spec : model::weight_layout(config)) sizes[spec.name] = numel_of(spec);
    auto fused = [&](const std::vector<std::string>& names) {
      offset = align_up(offset);
      for (const auto& name : names) place(name, sizes.at(name));
    };
    fused({"model.embed_tokens.weight"});
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      fused({p + "input_layernorm.weight"});
      fused({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"});
      if (config.qkv_bias) fused({p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias"});
      fused({p + "self_attn.o_proj.weight"});
      if (config.o_bias) fused({p + "self_attn.o_proj.bias"});
      fused({p + "post_attention_layernorm.weight"});
      fused({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"});
      if (config.mlp_bias) fused({p + "mlp.gate_proj.bias", p + "mlp.up_proj.bias"});
      fused({p + "mlp.down_proj.weight"});
      if (config.mlp_bias) fused({p + "mlp.down_proj.bias"});
    }
    fused({"model.norm.weight"});
    if (!config.tie_word_embeddings) fused({"lm_head.weight"});
    for (const auto& [name, size] : sizes)
      if (!placement.count(name) && !(quantized() && is_quantized_linear(name)))
        fail("cuda backend: tensor '{}' has no place in the weight plan", name);
    total_bytes = align_up(offset);
    return placement;
  }

  // The decoder layers' linear weights (not the LM head): what a quantization scheme stores in 8 bits.
  static bool is_quantized_linear(const std::string& name) {
    if (name.rfind("model.layers.", 0) != 0) return false;
    for (const char* suffix : {".q_proj.weight", ".k_proj.weight", ".v_proj.weight", ".o_proj.weight",
                               ".gate_proj.weight", ".up_proj.weight", ".down_proj.weight"})
      if (name.size() > std::strlen(suffix) && name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
        return true;
    return false;
  }

  // The fused 8-bit matrices: per layer qkv, o, gate_up, down, each its codes then its scales.
  struct QuantGroup {
    std::vector<std::string> members;  // the checkpoint tensors stacked in order, rows after rows
    int64_t rows = 0, cols = 0;
    size_t codes_offset = 0, scales_offset = 0;
    int written = 0;
  };
  struct QuantMember {
    size_t group;
    int64_t first_row;
  };
  std::vector<QuantGroup> quant_groups;
  std::map<std::string, QuantMember> quant_members;

  size_t plan_quantized() {
    quant_groups.clear();
    quant_members.clear();
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& spec : model::weight_layout(config)) shapes[spec.name] = spec.shape;
    size_t offset = 0;
    auto group = [&](const std::vector<std::string>& names) {
      QuantGroup g;
      g.members = names;
      g.cols = shapes.at(names.front())[1];
      for (const auto& name : names) {
        quant_members[name] = {quant_groups.size(), g.rows};
        g.rows += shapes.at(name)[0];
      }
      g.codes_offset = offset;
      offset = align_up(offset + static_cast<size_t>(g.rows * g.cols));
      g.scales_offset = offset;
      offset = align_up(offset + static_cast<size_t>(g.rows) * sizeof(float));
      quant_groups.push_back(std::move(g));
    };
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      group({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"});
      group({p + "self_attn.o_proj.weight"});
      group({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"});
      group({p + "mlp.down_proj.weight"});
    }
    return offset;
  }

  // Where a tensor's bf16 values go while loading: its place in `weights`, or for a quantized
  // linear its rows of the group's fused matrix in weight_scratch.
  char* load_destination(const std::string& name, const std::map<std::string, Placement>& placement) {
    auto member = quant_members.find(name);
    if (member == quant_members.end()) return weights.as<char>() + placement.at(name).offset;
    const QuantGroup& g = quant_groups[member->second.group];
    return weight_scratch.as<char>() + static_cast<size_t>(member->second.first_row * g.cols) * sizeof(bf16);
  }

  // After a tensor's bf16 values were enqueued: a group whose members are all in quantizes
  // (stream order keeps weight_scratch's next use behind this kernel).
  void after_load(const std::string& name) {
    auto member = quant_members.find(name);
    if (member == quant_members.end()) return;
    QuantGroup& g = quant_groups[member->second.group];
    if (++g.written < static_cast<int>(g.members.size())) return;
    kernels::quantize_rows(weight_scratch.as<bf16>(), g.rows, static_cast<int>(g.cols), quant_format(), false,
                           quant_weights.as<uint8_t>() + g.codes_offset,
                           reinterpret_cast<float*>(quant_weights.as<char>() + g.scales_offset), stream);
  }

  // Sets up quant_weights and weight_scratch (sized for the largest fused matrix) before loading.
  void prepare_quantized_load() {
    if (!quantized()) return;
    quant_weights = DeviceBuffer(plan_quantized());
    int64_t largest = 0;
    for (const QuantGroup& g : quant_groups) largest = std::max(largest, g.rows * g.cols);
    weight_scratch = DeviceBuffer(static_cast<size_t>(largest) * sizeof(bf16));
  }

  // Every group quantized once all tensors are in; the load-time bf16 matrix is freed unless INT8
  // weight-only GEMM steps need it.
  void finish_quantized_load() {
    if (!quantized()) return;
    for (const QuantGroup& g : quant_groups)
      if (g.written != static_cast<int>(g.members.size()))
        fail("cuda backend: quantized matrix of '{}' got {} of {} tensors", g.members.front(), g.written, g.members.size());
    IOL_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (options.quantization != quant::QuantScheme::Int8WeightOnly) weight_scratch = DeviceBuffer();
  }

  void bind_weights(const std::map<std::string, Placement>& placement) {
    auto at = [&](const std::string& name) -> const bf16* {
      return reinterpret_cast<const bf16*>(weights.as<char>() + placement.at(name).offset);
    };
    auto optional = [&](bool present, const std::string& name) -> const bf16* { return present ? at(name) : nullptr; };
    embed = at("model.embed_tokens.weight");
    final_norm = at("model.norm.weight");
    lm_head = config.tie_word_embeddings ? embed : at("lm_head.weight");
    auto linear = [&](const std::string& weight, const bf16* bias) {
      Linear lin;
      lin.bias = bias;
      auto member = quant_members.find(weight);
      if (member == quant_members.end()) {
        lin.w = at(weight);
      } else {
        const QuantGroup& g = quant_groups[member->second.group];
        lin.q = quant_weights.as<uint8_t>() + g.codes_offset;
        lin.scale = reinterpret_cast<const float*>(quant_weights.as<char>() + g.scales_offset);
      }
      return lin;
    };
    layers.clear();
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      LayerView v;
      v.input_norm = at(p + "input_layernorm.weight");
      v.post_norm = at(p + "post_attention_layernorm.weight");
      v.qkv = linear(p + "self_attn.q_proj.weight", optional(config.qkv_bias, p + "self_attn.q_proj.bias"));
      v.o = linear(p + "self_attn.o_proj.weight", optional(config.o_bias, p + "self_attn.o_proj.bias"));
      v.gate_up = linear(p + "mlp.gate_proj.weight", optional(config.mlp_bias, p + "mlp.gate_proj.bias"));
      v.down = linear(p + "mlp.down_proj.weight", optional(config.mlp_bias, p + "mlp.down_proj.bias"));
      layers.push_back(v);
    }
  }

  void load_dummy(uint64_t seed) {
    size_t total = 0;
    auto placement = plan_weights(total);
    weights = DeviceBuffer(total);
    prepare_quantized_load();
    for (const auto& spec : model::weight_layout(config)) {
      size_t numel = 1;
      for (auto d : spec.shape) numel *= static_cast<size_t>(d);
      const model::DummyRecipe recipe = model::dummy_recipe(spec, seed);
      kernels::fill_dummy_bf16(reinterpret_cast<bf16*>(load_destination(spec.name, placement)), numel, recipe.tensor_seed,
                               recipe.scale, recipe.offset, stream);
      after_load(spec.name);
    }
    IOL_CUDA_CHECK(cudaStreamSynchronize(stream));
    finish_quantized_load();
    bind_weights(placement);
  }

  // Host tensors (mmap'd checkpoint or host dummy) → bf16 in pinned staging → device. Two staging
  // halves alternate, so converting one chunk overlaps the copy of the previous one.
  void load_host(const model::ModelWeights& host) {
    size_t total = 0;
    auto placement = plan_weights(total);
    weights = DeviceBuffer(total);
    prepare_quantized_load();
    constexpr size_t kChunk = size_t{32} << 20;  // bytes of bf16 per staging half
    PinnedBuffer staging(2 * kChunk);
    cudaEvent_t done[2];
    for (auto& e : done) IOL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    bool pending[2] = {false, false};
    int half = 0;
    for (const auto& spec : model::weight_layout(config)) {
      const model::TensorView& view = host.tensor(spec.name);
      char* destination = load_destination(spec.name, placement);
      size_t numel = 1;
      for (auto d : spec.shape) numel *= static_cast<size_t>(d);
      for (size_t first = 0; first < numel; first += kChunk / sizeof(bf16)) {
        const size_t count = std::min(numel - first, kChunk / sizeof(bf16));
        if (pending[half]) IOL_CUDA_CHECK(cudaEventSynchronize(done[half]));
        auto* out = reinterpret_cast<uint16_t*>(staging.as<char>() + half * kChunk);
        const auto* src = static_cast<const std::byte*>(view.data);
        switch (view.dtype) {
          case DType::BF16: std::memcpy(out, src + first * 2, count * 2); break;
          case DType::F16:
            for (size_t i = 0; i < count; ++i) {
              uint16_t bits;
              std::memcpy(&bits, src + (first + i) * 2, 2);
              out[i] = f32_to_bf16(f16_to_f32(bits));
            }
            break;
          case DType::F32:
            for (size_t i = 0; i < count; ++i) {
              float value;
              std::memcpy(&value, src + (first + i) * 4, 4);
              out[i] = f32_to_bf16(value);
            }
            break;
          default: fail("cuda backend: tensor '{}' has dtype {} (F32, F16 or BF16 expected)", spec.name, dtype_name(view.dtype));
        }
        IOL_CUDA_CHECK(cudaMemcpyAsync(destination + first * 2, out, count * 2, cudaMemcpyHostToDevice, stream));
        IOL_CUDA_CHECK(cudaEventRecord(done[half], stream));
        pending[half] = true;
        half ^= 1;
      }
      after_load(spec.name);
    }
    IOL_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (auto& e : done) cudaEventDestroy(e);
    finish_quantized_load();
    bind_weights(placement);
  }

  // ---- memory plan -----------------------------------------------------------------------

  void allocate_activations() {
    auto bf16_rows = [&](int64_t rows, int64_t width) { return DeviceBuffer(static_cast<size_t>(rows * width) * sizeof(bf16)); };
    residual = bf16_rows(max_tokens, hidden);
    normed = bf16_rows(max_tokens, hidden);
    qkv = bf16_rows(max_tokens, qkv_size);
    attn_out = bf16_rows(max_tokens, q_size);
    proj = bf16_rows(max_tokens, hidden);
    gate_up = bf16_rows(max_tokens, 2 * inter);
    act = bf16_rows(max_tokens, inter);
    final_rows = bf16_rows(max_logits_rows, hidden);
    if (options.quantization == quant::QuantScheme::Fp8) {
      const int64_t widest_input = std::max({hidden, q_size, inter});
      act_codes = DeviceBuffer(static_cast<size_t>(max_tokens * widest_input));
      act_scales = DeviceBuffer(static_cast<size_t>(max_tokens) * sizeof(float));
      // cuBLASLt's scale-vector epilogue where it has one (probed on the QKV shape); else fp32 sums.
      fp8_outer_vector = gemm->fp8_outer_vector_supported(static_cast<int>(max_tokens), static_cast<int>(qkv_size),
                                                          static_cast<int>(hidden));
      if (!fp8_outer_vector) {
        const int64_t widest_output = std::max({qkv_size, 2 * inter, hidden});
        gemm_scratch = DeviceBuffer(static_cast<size_t>(max_tokens * widest_output) * sizeof(float));
      }
    }
    logits = DeviceBuffer(static_cast<size_t>(max_logits_rows * vocab) * sizeof(float));
    decode_workspace = DeviceBuffer(kernels::paged_attention_decode_workspace_bytes(
        static_cast<int>(max_seqs), static_cast<int>(config.num_attention_heads), static_cast<int>(head_dim), kMaxDecodeSplits));
    kernels::paged_attention_decode_workspace_init(decode_workspace.data(), static_cast<int>(max_seqs),
                                                   static_cast<int>(config.num_attention_heads));
    sampler_workspace = DeviceBuffer(kernels::sampler_workspace_bytes(static_cast<int>(max_rows), static_cast<int>(vocab)));
    const std::vector<float> frequencies = rope_inverse_frequencies(config.rope, head_dim);
    inv_freq = DeviceBuffer(frequencies.size() * sizeof(float));
    inv_freq.upload(frequencies.data(), frequencies.size() * sizeof(float));

    // Metadata: the same layout on host (pinned) and device.
    size_t offset = 0;
    auto field = [&](size_t bytes) {
      const size_t at = offset;
      offset = align_up(offset + bytes);
      return at;
    };
    const size_t T = static_cast<size_t>(max_tokens), S = static_cast<size_t>(max_seqs), R = static_cast<size_t>(max_rows);
    const size_t o_tokens = field(T * 4), o_positions = field(T * 4), o_slots = field(T * 8), o_qsl = field((S + 1) * 4),
                 o_ctx = field(S * 4), o_tables = field(S * static_cast<size_t>(max_blocks_per_seq) * 4),
                 o_logits = field(static_cast<size_t>(max_logits_rows) * 4), o_decode = field(S * 4), o_prefill = field(S * 4),
                 o_rows = field(R * sizeof(sampling::SamplingRow)),
                 o_sampling = field(static_cast<size_t>(max_sampling_tokens) * 4), o_copies = field(2 * 4096 * 4);
    metadata_bytes = offset;
    metadata_device = DeviceBuffer(metadata_bytes);
    metadata_host = PinnedBuffer(metadata_bytes);
    auto bind = [&](char* base) {
      return Metadata{reinterpret_cast<int32_t*>(base + o_tokens), reinterpret_cast<int32_t*>(base + o_positions),
                      reinterpret_cast<int64_t*>(base + o_slots), reinterpret_cast<int32_t*>(base + o_qsl),
                      reinterpret_cast<int32_t*>(base + o_ctx), reinterpret_cast<int32_t*>(base + o_tables),
                      reinterpret_cast<int32_t*>(base + o_logits), reinterpret_cast<int32_t*>(base + o_decode),
                      reinterpret_cast<int32_t*>(base + o_prefill), reinterpret_cast<sampling::SamplingRow*>(base + o_rows),
                      reinterpret_cast<int32_t*>(base + o_sampling), reinterpret_cast<int32_t*>(base + o_copies)};
    };
    device_meta = bind(metadata_device.as<char>());
    host_meta = bind(metadata_host.as<char>());

    const size_t k = static_cast<size_t>(sampling::kMaxLogprobs);
    const size_t out_bytes = R * 4 + R * 4 + R * k * 4 + R * k * 4;
    out_device = DeviceBuffer(out_bytes);
    out_host = PinnedBuffer(out_bytes);
    out_tokens_d = out_device.as<int32_t>();
    out_logprobs_d = reinterpret_cast<float*>(out_tokens_d + R);
    out_top_ids_d = reinterpret_cast<int32_t*>(out_logprobs_d + R);
    out_top_logprobs_d = reinterpret_cast<float*>(out_top_ids_d + R * k);
  }

  void allocate_kv_cache() {
    kv_format = options.kv_cache_dtype == quant::KvCacheDtype::Fp8 ? kernels::KvCacheFormat::Fp8E4M3
                                                                   : kernels::KvCacheFormat::Bf16;
    const int64_t block_elements = options.block_size * kv_size;
    const int64_t bytes_per_block =
        2 * config.num_hidden_layers * block_elements * static_cast<int64_t>(kv_element_bytes());
    int64_t num_blocks = options.num_kv_blocks;
    if (num_blocks <= 0) {
      int64_t budget = options.kv_cache_memory;
      if (budget <= 0) {
        size_t free_bytes = 0, total_bytes = 0;
        IOL_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
        // What this process (and anyone else) uses now counts against the utilisation target;
        // 512 MiB stay for CUDA graphs, cuBLASLt and the context.
        const double target = options.gpu_memory_utilization * static_cast<double>(total_bytes);
        const double used = static_cast<double>(total_bytes - free_bytes);
        budget = static_cast<int64_t>(target - used) - (int64_t{512} << 20);
        if (budget < bytes_per_block)
          fail("cuda backend: no memory left for the KV cache: {:.2f} GiB of {:.2f} GiB are used after weights and "
               "activations, the target is {:.0f}%; raise --gpu-memory-utilization or lower --max-num-batched-tokens",
               used / (1 << 30), static_cast<double>(total_bytes) / (1 << 30), options.gpu_memory_utilization * 100);
      }
      num_blocks = budget / bytes_per_block;
    }
    if (num_blocks <= 0) fail("cuda backend: the KV cache holds no block ({} bytes per block)", bytes_per_block);
    layer_stride = num_blocks * block_elements;
    k_cache = DeviceBuffer(static_cast<size_t>(config.num_hidden_layers * layer_stride) * kv_element_bytes());
    v_cache = DeviceBuffer(static_cast<size_t>(config.num_hidden_layers * layer_stride) * kv_element_bytes());
    kv_spec.shape = {num_blocks, options.block_size, config.num_hidden_layers, config.num_key_value_heads, head_dim};
    kv_spec.dtype = kv_format == kernels::KvCacheFormat::Fp8E4M3 ? DType::F8_E4M3 : DType::BF16;
    kv_spec.bytes_per_block = bytes_per_block;
  }

  // ---- one step ----------------------------------------------------------------------------

  struct StepShape {
    int num_tokens = 0, num_seqs = 0, num_logits_rows = 0, num_rows = 0;
    int num_decode = 0, num_prefill = 0, max_query_len = 0, max_context_len = 0;
  };

  // Validates the batch against the reserved sizes (a boundary: the engine must respect them).
  void check_fits(const ForwardBatch& batch, size_t num_rows, size_t num_sampling_tokens) const {
    if (static_cast<int64_t>(batch.num_tokens()) > max_tokens || static_cast<int64_t>(batch.num_seqs()) > max_seqs ||
        static_cast<int64_t>(num_rows) > max_rows || batch.max_blocks_per_seq > max_blocks_per_seq ||
        static_cast<int64_t>(batch.logits_indices.size()) > max_logits_rows ||
        static_cast<int64_t>(num_sampling_tokens) > max_sampling_tokens)
      fail("cuda backend: a step of {} tokens, {} sequences, {} sampling rows, {} logits rows, {} blocks per sequence "
           "exceeds what was reserved ({} tokens, {} sequences, {} sampling rows, {} logits rows, {} blocks per sequence)",
           batch.num_tokens(), batch.num_seqs(), num_rows, batch.logits_indices.size(), batch.max_blocks_per_seq,
           max_tokens, max_seqs, max_rows, max_logits_rows, max_blocks_per_seq);
  }

  // Fills pinned staging for a batch padded to `pad_seqs` decode sequences (0: no padding) and
  // copies it to the device in one transfer per array.
  StepShape stage(const ForwardBatch& batch, const sampling::SamplingBatch* sampling, int pad_seqs) {
    StepShape shape;
    shape.num_tokens = static_cast<int>(batch.num_tokens());
    shape.num_seqs = static_cast<int>(batch.num_seqs());
    shape.num_logits_rows = static_cast<int>(batch.logits_indices.size());
    shape.num_rows = sampling ? static_cast<int>(sampling->rows.size()) : 0;
    const Metadata& h = host_meta;
    std::copy(batch.token_ids.begin(), batch.token_ids.end(), h.token_ids);
    std::copy(batch.positions.begin(), batch.positions.end(), h.positions);
    std::copy(batch.slot_mapping.begin(), batch.slot_mapping.end(), h.slot_mapping);
    std::copy(batch.query_start_loc.begin(), batch.query_start_loc.end(), h.query_start_loc);
    std::copy(batch.context_lens.begin(), batch.context_lens.end(), h.context_lens);
    std::copy(batch.logits_indices.begin(), batch.logits_indices.end(), h.logits_indices);
    // Block tables with the fixed stride max_blocks_per_seq (graphs bake the stride in).
    for (int s = 0; s < shape.num_seqs; ++s)
      std::copy_n(batch.block_tables.begin() + static_cast<ptrdiff_t>(s) * batch.max_blocks_per_seq, batch.max_blocks_per_seq,
                  h.block_tables + static_cast<int64_t>(s) * max_blocks_per_seq);
    for (int s = 0; s < shape.num_seqs; ++s) {
      const int query_len = batch.query_start_loc[s + 1] - batch.query_start_loc[s];
      shape.max_context_len = std::max(shape.max_context_len, batch.context_lens[s]);
      if (query_len == 1) {
        h.decode_seqs[shape.num_decode++] = s;
      } else {
        h.prefill_seqs[shape.num_prefill++] = s;
        shape.max_query_len = std::max(shape.max_query_len, query_len);
      }
    }
    if (sampling) {
      std::copy(sampling->rows.begin(), sampling->rows.end(), h.rows);
      std::copy(sampling->token_ids.begin(), sampling->token_ids.end(), h.sampling_tokens);
    }
    if (pad_seqs > shape.num_seqs) {
      // Padding sequences of a graph bucket: one token at position 0 of block 0, written nowhere
      // (slot -1), attending to itself; greedy rows on their own logits. Their results are dropped.
      for (int s = shape.num_seqs; s < pad_seqs; ++s) {
        h.token_ids[s] = 0;
        h.positions[s] = 0;
        h.slot_mapping[s] = -1;
        h.query_start_loc[s + 1] = s + 1;
        h.context_lens[s] = 1;
        h.block_tables[static_cast<int64_t>(s) * max_blocks_per_seq] = 0;
        h.logits_indices[s] = s;
        h.decode_seqs[s] = s;
        h.rows[s] = sampling::SamplingRow{};
        h.rows[s].logits_row = s;
      }
    }
    const int seqs = std::max(shape.num_seqs, pad_seqs), tokens = std::max(shape.num_tokens, pad_seqs);
    const int rows = std::max(shape.num_rows, pad_seqs);
    auto copy = [&](const void* host_ptr, size_t bytes) {
      if (bytes == 0) return;
      const size_t offset = static_cast<const char*>(host_ptr) - metadata_host.as<const char>();
      IOL_CUDA_CHECK(cudaMemcpyAsync(metadata_device.as<char>() + offset, host_ptr, bytes, cudaMemcpyHostToDevice, stream));
    };
    copy(h.token_ids, tokens * 4);
    copy(h.positions, tokens * 4);
    copy(h.slot_mapping, tokens * 8);
    copy(h.query_start_loc, (seqs + 1) * 4);
    copy(h.context_lens, seqs * 4);
    copy(h.block_tables, static_cast<size_t>(seqs) * max_blocks_per_seq * 4);
    copy(h.logits_indices, std::max(shape.num_logits_rows, pad_seqs) * 4);
    copy(h.decode_seqs, std::max(shape.num_decode, pad_seqs) * 4);
    copy(h.prefill_seqs, shape.num_prefill * 4);
    if (sampling) {
      copy(h.rows, rows * sizeof(sampling::SamplingRow));
      copy(h.sampling_tokens, sampling->token_ids.size() * 4);
    }
    return shape;
  }

  kernels::PagedAttentionParams attention_params(int layer) const {
    kernels::PagedAttentionParams p;
    p.q = qkv.as<bf16>();
    p.q_row_stride = qkv_size;
    p.k_cache = k_layer(layer);
    p.v_cache = v_layer(layer);
    p.kv_format = kv_format;
    p.query_start_loc = device_meta.query_start_loc;
    p.context_lens = device_meta.context_lens;
    p.block_tables = device_meta.block_tables;
    p.max_blocks_per_seq = static_cast<int>(max_blocks_per_seq);
    p.num_heads = static_cast<int>(config.num_attention_heads);
    p.num_kv_heads = static_cast<int>(config.num_key_value_heads);
    p.head_dim = static_cast<int>(head_dim);
    p.block_size = static_cast<int>(options.block_size);
    p.sliding_window = static_cast<int>(config.layer_sliding_window[static_cast<size_t>(layer)]);
    p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    p.out = attn_out.as<bf16>();
    return p;
  }

  // RoPE on q/k of the qkv rows with the K/V write through slot_mapping, then paged attention of
  // the decode sequences and of the prefill sequences into attn_out.
  void attention(const StepShape& shape, int l) {
    kernels::rope_kv_write(qkv.as<bf16>(), device_meta.positions, device_meta.slot_mapping, inv_freq.as<float>(),
                           shape.num_tokens, static_cast<int>(config.num_attention_heads),
                           static_cast<int>(config.num_key_value_heads), static_cast<int>(head_dim),
                           k_layer(l), v_layer(l), kv_format, 1.0f, 1.0f, stream);
    kernels::PagedAttentionParams p = attention_params(l);
    if (shape.num_decode > 0) {
      p.seq_indices = device_meta.decode_seqs;
      p.num_selected = shape.num_decode;
      p.max_query_len = 1;
      p.max_context_len = shape.max_context_len;
      kernels::paged_attention_decode(p, static_cast<int>(max_seqs), kMaxDecodeSplits, decode_workspace.data(), stream);
    }
    if (shape.num_prefill > 0) {
      p.seq_indices = device_meta.prefill_seqs;
      p.num_selected = shape.num_prefill;
      p.max_query_len = shape.max_query_len;
      p.max_context_len = shape.max_context_len;
      kernels::paged_attention_prefill(p, stream);
    }
  }

  // One linear layer through kernels::gemv: out = epilogue(norm?(in) · weightᵀ + bias), `rows` rows.
  void gemv(const bf16* in, const Linear& lin, const bf16* norm, int n, int k, kernels::GemvEpilogue epilogue, void* out,
            int rows) {
    kernels::GemvParams g;
    g.x = in;
    g.m = rows;
    g.n = n;
    g.k = k;
    if (lin.q != nullptr) {
      g.w = lin.q;
      g.weights = options.quantization == quant::QuantScheme::Fp8 ? kernels::GemvWeights::Fp8E4M3 : kernels::GemvWeights::Int8;
      g.weight_scale = lin.scale;
      g.quantize_activations = quant::quantizes_activations(options.quantization);
    } else {
      g.w = lin.w;
    }
    g.bias = lin.bias;
    g.norm_weight = norm;
    g.norm_eps = static_cast<float>(config.rms_norm_eps);
    g.epilogue = epilogue;
    g.out = out;
    kernels::gemv(g, stream);
  }

  // One linear layer of a GEMM step: y[m][n] = x[m][k] · Wᵀ + bias, bf16 out (fp32 with out_fp32,
  // bf16 weights only). FP8: x quantized per token, then cuBLASLt's E4M3 GEMM; INT8 weight-only:
  // the layer dequantized to bf16 (weight_scratch), then the bf16 GEMM.
  void gemm_linear(const bf16* x, const Linear& lin, void* y, int m, int n, int k, bool out_fp32 = false) {
    if (lin.q == nullptr) return gemm->linear(x, lin.w, lin.bias, y, m, n, k, out_fp32, stream);
    if (options.quantization == quant::QuantScheme::Fp8) {
      kernels::quantize_rows(x, m, k, kernels::QuantFormat::Fp8E4M3, true, act_codes.as<uint8_t>(), act_scales.as<float>(),
                             stream);
      gemm->linear_fp8(act_codes.as<uint8_t>(), act_scales.as<float>(), lin.q, lin.scale, lin.bias, static_cast<bf16*>(y),
                       gemm_scratch.as<float>(), m, n, k, stream);
      return;
    }
    kernels::dequantize_rows(lin.q, lin.scale, n, k, kernels::QuantFormat::Int8, weight_scratch.as<bf16>(), stream);
    gemm->linear(x, weight_scratch.as<bf16>(), lin.bias, y, m, n, k, out_fp32, stream);
  }

  // The forward of a step of at most gemv_max_rows tokens: each linear layer is one kernels::gemv
  // that streams its weights once, with the RMSNorm in front, SwiGLU and the residual add fused
  // in, so a layer is 4 GEMVs + RoPE/KV write + attention. The residual stream x is updated in
  // place by the O and down projections (the same roundings as add_rms_norm's add).
  Linear lm_head_linear() const {
    Linear lin;
    lin.w = lm_head;
    return lin;
  }

  void forward_gemv(const StepShape& shape) {
    const int T = shape.num_tokens, H = static_cast<int>(hidden);
    bf16* x = residual.as<bf16>();
    using E = kernels::GemvEpilogue;
    kernels::embedding(embed, device_meta.token_ids, T, H, x, stream);
    for (int l = 0; l < static_cast<int>(layers.size()); ++l) {
      const LayerView& w = layers[static_cast<size_t>(l)];
      gemv(x, w.qkv, w.input_norm, static_cast<int>(qkv_size), H, E::StoreBf16, qkv.data(), T);
      attention(shape, l);
      gemv(attn_out.as<bf16>(), w.o, nullptr, H, static_cast<int>(q_size), E::AddResidual, x, T);
      gemv(x, w.gate_up, w.post_norm, static_cast<int>(inter), H, E::SwiGlu, act.data(), T);
      gemv(act.as<bf16>(), w.down, nullptr, H, static_cast<int>(inter), E::AddResidual, x, T);
    }
    // Gather the logits rows of the residual stream, then final norm + LM head in one GEMV.
    if (shape.num_logits_rows == 0) return;
    kernels::embedding(x, device_meta.logits_indices, shape.num_logits_rows, H, final_rows.as<bf16>(), stream);
    gemv(final_rows.as<bf16>(), lm_head_linear(), final_norm, static_cast<int>(vocab), H, E::StoreF32, logits.data(),
         shape.num_logits_rows);
  }

  // The forward of `shape` (num_tokens rows, num_decode decode sequences first in decode_seqs,
  // num_prefill in prefill_seqs), leaving fp32 logits of num_logits_rows rows in `logits`.
  void forward(const StepShape& shape) {
    if (options.decode_gemv && shape.num_tokens <= gemv_max_rows) return forward_gemv(shape);
    const int T = shape.num_tokens, H = static_cast<int>(hidden);
    const float eps = static_cast<float>(config.rms_norm_eps);
    bf16 *x = residual.as<bf16>(), *n = normed.as<bf16>(), *y = proj.as<bf16>();
    kernels::embedding(embed, device_meta.token_ids, T, H, x, stream);
    for (int l = 0; l < static_cast<int>(layers.size()); ++l) {
      const LayerView& w = layers[static_cast<size_t>(l)];
      if (l == 0) kernels::rms_norm(x, nullptr, w.input_norm, eps, T, H, n, stream);
      else kernels::add_rms_norm(x, y, w.input_norm, eps, T, H, n, stream);
      gemm_linear(n, w.qkv, qkv.data(), T, static_cast<int>(qkv_size), H);
      attention(shape, l);
      gemm_linear(attn_out.as<bf16>(), w.o, y, T, H, static_cast<int>(q_size));
      kernels::add_rms_norm(x, y, w.post_norm, eps, T, H, n, stream);
      gemm_linear(n, w.gate_up, gate_up.data(), T, static_cast<int>(2 * inter), H);
      kernels::silu_mul(gate_up.as<bf16>(), T, static_cast<int>(inter), act.as<bf16>(), stream);
      gemm_linear(act.as<bf16>(), w.down, y, T, H, static_cast<int>(inter));
    }
    // Final norm over every row (cheap next to the GEMMs), then only the logits rows go through
    // the LM head: the embedding gather picks them.
    kernels::add_rms_norm(x, y, final_norm, eps, T, H, n, stream);
    kernels::embedding(n, device_meta.logits_indices, shape.num_logits_rows, H, final_rows.as<bf16>(), stream);
    gemm->linear(final_rows.as<bf16>(), lm_head, nullptr, logits.data(), shape.num_logits_rows, static_cast<int>(vocab), H,
                 true, stream);
  }

  void sample(int num_rows) {
    kernels::SamplerParams p;
    p.logits = logits.as<float>();
    p.vocab = static_cast<int>(vocab);
    p.rows = device_meta.rows;
    p.num_rows = num_rows;
    p.token_ids = device_meta.sampling_tokens;
    p.workspace = sampler_workspace.data();
    p.out_tokens = out_tokens_d;
    p.out_logprobs = out_logprobs_d;
    p.out_top_ids = out_top_ids_d;
    p.out_top_logprobs = out_top_logprobs_d;
    kernels::sample(p, stream);
  }

  // Graph of a decode-only step of `bucket` sequences: forward + sampling.
  cudaGraphExec_t capture(int bucket) {
    StepShape shape;
    shape.num_tokens = shape.num_seqs = shape.num_logits_rows = shape.num_rows = shape.num_decode = bucket;
    shape.max_query_len = 1;
    // Split-KV partitions are cut from each sequence's own context length at run time; the grid
    // is sized for the longest context the graph may see.
    shape.max_context_len = static_cast<int>(options.max_model_len);
    cudaGraph_t graph;
    IOL_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    forward(shape);
    sample(bucket);
    IOL_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec;
    IOL_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    IOL_CUDA_CHECK(cudaGraphDestroy(graph));
    return exec;
  }

  void capture_graphs() {
    buckets = graph_buckets(max_seqs);
    // Capture GEMM plans first (cuBLASLt's heuristic query must not run inside a capture).
    for (int b : buckets) {
      StepShape shape;
      shape.num_tokens = shape.num_seqs = shape.num_logits_rows = b;
      warm_gemm_plans(shape.num_tokens, shape.num_logits_rows);
    }
    // The decode GEMV's per-shape launch configuration too (one eager run of each bucket's shapes).
    for (int b : buckets)
      if (options.decode_gemv && b <= gemv_max_rows) warm_gemv(b);
    IOL_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int b : buckets) graphs[b] = capture(b);
  }

  void warm_gemv(int rows) {
    // Every GEMV shape of a step of `rows` tokens, on the (unused) activation buffers.
    const LayerView& w = layers.front();
    const int H = static_cast<int>(hidden);
    using E = kernels::GemvEpilogue;
    gemv(normed.as<bf16>(), w.qkv, w.input_norm, static_cast<int>(qkv_size), H, E::StoreBf16, qkv.data(), rows);
    gemv(attn_out.as<bf16>(), w.o, nullptr, H, static_cast<int>(q_size), E::AddResidual, residual.data(), rows);
    gemv(normed.as<bf16>(), w.gate_up, w.post_norm, static_cast<int>(inter), H, E::SwiGlu, act.data(), rows);
    gemv(act.as<bf16>(), w.down, nullptr, H, static_cast<int>(inter), E::AddResidual, residual.data(), rows);
    gemv(final_rows.as<bf16>(), lm_head_linear(), final_norm, static_cast<int>(vocab), H, E::StoreF32, logits.data(), rows);
  }

  void warm_gemm_plans(int tokens, int logits_rows) {
    // Runs each GEMM shape once on the (uninitialised, unused) activations so its plan exists.
    const int H = static_cast<int>(hidden);
    const LayerView& w = layers.front();
    gemm_linear(normed.as<bf16>(), w.qkv, qkv.data(), tokens, static_cast<int>(qkv_size), H);
    gemm_linear(attn_out.as<bf16>(), w.o, proj.data(), tokens, H, static_cast<int>(q_size));
    gemm_linear(normed.as<bf16>(), w.gate_up, gate_up.data(), tokens, static_cast<int>(2 * inter), H);
    gemm_linear(act.as<bf16>(), w.down, proj.data(), tokens, H, static_cast<int>(inter));
    gemm->linear(final_rows.as<bf16>(), lm_head, nullptr, logits.data(), logits_rows, static_cast<int>(vocab), H, true, stream);
  }

  // After a step's synchronisation: its busy time, and the idle gap since the previous step ended.
  void account_step() {
    float busy_ms = 0.0f, idle_ms = 0.0f;
    IOL_CUDA_CHECK(cudaEventElapsedTime(&busy_ms, step_events[0], step_events[1]));
    if (has_previous_step) IOL_CUDA_CHECK(cudaEventElapsedTime(&idle_ms, step_events[2], step_events[0]));
    timeline.steps += 1;
    timeline.busy_s += busy_ms * 1e-3;
    timeline.idle_s += std::max(0.0f, idle_ms) * 1e-3;
    std::swap(step_events[1], step_events[2]);
    has_previous_step = true;
  }

  int graph_bucket_for(const ForwardBatch& batch) const {
    if (graphs.empty() || batch.num_tokens() != batch.num_seqs()) return 0;  // not decode-only
    const int n = static_cast<int>(batch.num_seqs());
    auto it = std::lower_bound(buckets.begin(), buckets.end(), n);
    return it == buckets.end() ? 0 : *it;
  }
};

CudaBackend::CudaBackend(const model::ModelConfig& config, const model::ModelWeights& weights,
                         const CudaBackendOptions& options)
    : impl_(std::make_unique<Impl>(config, options)) {
  const auto start = std::chrono::steady_clock::now();
  impl_->load_host(weights);
  impl_->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  impl_->allocate_activations();
  impl_->allocate_kv_cache();
  if (options.cuda_graphs) impl_->capture_graphs();
  IOL_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

CudaBackend::CudaBackend(const model::ModelConfig& config, uint64_t dummy_seed, const CudaBackendOptions& options)
    : impl_(std::make_unique<Impl>(config, options)) {
  const auto start = std::chrono::steady_clock::now();
  impl_->load_dummy(dummy_seed);
  impl_->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  impl_->allocate_activations();
  impl_->allocate_kv_cache();
  if (options.cuda_graphs) impl_->capture_graphs();
  IOL_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

CudaBackend::~CudaBackend() = default;

const KvCacheSpec& CudaBackend::kv_cache_spec() const { return impl_->kv_spec; }
int64_t CudaBackend::vocab_size() const { return impl_->vocab; }
double CudaBackend::load_seconds() const { return impl_->load_seconds; }
std::string CudaBackend::linear_description() const {
  switch (impl_->options.quantization) {
    case quant::QuantScheme::None: return "bf16";
    case quant::QuantScheme::Fp8:
      return impl_->fp8_outer_vector ? "fp8 W8A8 (cuBLASLt scale vectors)" : "fp8 W8A8 (fp32 sums + scale kernel)";
    case quant::QuantScheme::Int8WeightOnly: return "int8 W8A16";
  }
  return "bf16";
}
std::optional<DeviceTimeline> CudaBackend::device_timeline() const { return impl_->timeline; }

void CudaBackend::execute(const ForwardBatch& batch, const sampling::SamplingBatch& sampling, sampling::SampledBatch& out) {
  Impl& m = *impl_;
  m.check_fits(batch, sampling.rows.size(), sampling.token_ids.size());
  for (const auto& row : sampling.rows) {
    if (row.logits_row < 0 || row.logits_row >= static_cast<int32_t>(batch.logits_indices.size()))
      fail("cuda backend: sampling row reads logits row {} of {}", row.logits_row, batch.logits_indices.size());
  }
  const int num_rows = static_cast<int>(sampling.rows.size());
  // A graph bucket pads sequences, logits rows and sampling rows alike: only when every sequence
  // draws exactly one token from its own row (no forking this step).
  int bucket = m.graph_bucket_for(batch);
  if (bucket > 0 && (num_rows != static_cast<int>(batch.num_seqs()) || batch.logits_indices.size() != batch.num_seqs() ||
                     sampling.has_proposals()))
    bucket = 0;
  IOL_CUDA_CHECK(cudaEventRecord(m.step_events[0], m.stream));
  if (bucket > 0) {
    m.stage(batch, &sampling, bucket);
    IOL_CUDA_CHECK(cudaGraphLaunch(m.graphs.at(bucket), m.stream));
  } else {
    const Impl::StepShape shape = m.stage(batch, &sampling, 0);
    m.forward(shape);
    m.sample(num_rows);
  }
  // Only token ids and the logprobs asked for come back.
  const size_t S = static_cast<size_t>(m.max_rows), k = static_cast<size_t>(sampling::kMaxLogprobs);
  const size_t rows = static_cast<size_t>(num_rows);
  IOL_CUDA_CHECK(cudaMemcpyAsync(m.out_host.data(), m.out_device.data(), rows * 4, cudaMemcpyDeviceToHost, m.stream));
  IOL_CUDA_CHECK(cudaMemcpyAsync(m.out_host.as<char>() + S * 4, m.out_device.as<char>() + S * 4, rows * 4,
                                 cudaMemcpyDeviceToHost, m.stream));
  int32_t max_top = 0;
  for (const auto& row : sampling.rows) max_top = std::max(max_top, row.num_top_logprobs);
  if (max_top > 0) {
    IOL_CUDA_CHECK(cudaMemcpyAsync(m.out_host.as<char>() + S * 8, m.out_device.as<char>() + S * 8, rows * k * 8,
                                   cudaMemcpyDeviceToHost, m.stream));
  }
  IOL_CUDA_CHECK(cudaEventRecord(m.step_events[1], m.stream));
  IOL_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  m.account_step();
  out.resize(rows);
  const auto* tokens = m.out_host.as<const int32_t>();
  const auto* logprobs = reinterpret_cast<const float*>(tokens + S);
  std::copy_n(tokens, rows, out.tokens.begin());
  std::copy_n(logprobs, rows, out.logprobs.begin());
  if (max_top > 0) {
    const auto* top_ids = reinterpret_cast<const int32_t*>(logprobs + S);
    const auto* top_logprobs = reinterpret_cast<const float*>(top_ids + S * k);
    std::copy_n(top_ids, rows * k, out.top_ids.begin());
    std::copy_n(top_logprobs, rows * k, out.top_logprobs.begin());
  }
  if (sampling.has_proposals()) {
    // Every row holds its plain draw (the device sampler uses the rows' own random keys, as the
    // host does); the run walk decides acceptance. Only a draft-model proposal under sampling
    // needs its row's logits, fetched here (docs/speculative.md: the verifier on cuda).
    spec::verify_sampled_runs(sampling, m.vocab,
                              [&](int32_t logits_row) {
                                m.verify_logits.resize(static_cast<size_t>(m.vocab));
                                IOL_CUDA_CHECK(cudaMemcpy(m.verify_logits.data(),
                                                          m.logits.as<const float>() + static_cast<int64_t>(logits_row) * m.vocab,
                                                          m.verify_logits.size() * sizeof(float), cudaMemcpyDeviceToHost));
                                return std::span<const float>(m.verify_logits);
                              },
                              out);
  }
}

void CudaBackend::compute_logits(const ForwardBatch& batch, std::span<float> logits) {
  Impl& m = *impl_;
  m.check_fits(batch, 0, 0);
  const size_t rows = batch.logits_indices.size();
  if (logits.size() != rows * static_cast<size_t>(m.vocab))
    fail("cuda backend: logits buffer holds {} values, batch needs {}", logits.size(), rows * static_cast<size_t>(m.vocab));
  if (static_cast<int64_t>(rows) > m.max_logits_rows)
    fail("cuda backend: {} logits rows requested, {} reserved (CudaBackendOptions::max_logits_rows)", rows,
         m.max_logits_rows);
  const Impl::StepShape shape = m.stage(batch, nullptr, 0);
  m.forward(shape);
  IOL_CUDA_CHECK(cudaMemcpyAsync(logits.data(), m.logits.data(), logits.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                 m.stream));
  IOL_CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

void CudaBackend::copy_blocks(std::span<const std::pair<int32_t, int32_t>> copies) {
  Impl& m = *impl_;
  constexpr size_t kMaxCopies = 4096;
  for (size_t first = 0; first < copies.size(); first += kMaxCopies) {
    const size_t count = std::min(kMaxCopies, copies.size() - first);
    for (size_t i = 0; i < count; ++i) {
      m.host_meta.block_copies[2 * i] = copies[first + i].first;
      m.host_meta.block_copies[2 * i + 1] = copies[first + i].second;
    }
    const size_t offset = reinterpret_cast<const char*>(m.host_meta.block_copies) - m.metadata_host.as<const char>();
    IOL_CUDA_CHECK(cudaMemcpyAsync(m.metadata_device.as<char>() + offset, m.host_meta.block_copies, count * 8,
                                   cudaMemcpyHostToDevice, m.stream));
    const auto element = static_cast<int64_t>(m.kv_element_bytes());
    kernels::copy_blocks_bytes(m.k_cache.data(), m.v_cache.data(), m.device_meta.block_copies, static_cast<int>(count),
                               static_cast<int>(m.config.num_hidden_layers), m.layer_stride * element,
                               m.options.block_size * m.kv_size * element, m.stream);
    // The staging area is reused by the next chunk: wait for this one's copy.
    IOL_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  }
}

std::optional<HardwareCeilings> CudaBackend::measure_ceilings() {
  const MeasuredCeilings m = measure_hardware_ceilings(*impl_->gemm, impl_->stream);
  return HardwareCeilings{m.read_bytes_per_s, m.copy_bytes_per_s, m.bf16_gemm_flops, m.stream_bytes};
}

std::vector<float> CudaBackend::read_kv_cache(int64_t layer, bool values) const {
  const Impl& m = *impl_;
  const DeviceBuffer& cache = values ? m.v_cache : m.k_cache;
  IOL_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  std::vector<float> out(static_cast<size_t>(m.layer_stride));
  if (m.kv_format == kernels::KvCacheFormat::Fp8E4M3) {
    std::vector<uint8_t> codes(out.size());
    cache.download(codes.data(), codes.size(), static_cast<size_t>(layer * m.layer_stride));
    for (size_t i = 0; i < codes.size(); ++i) out[i] = quant::decode_e4m3(codes[i]);  // scale 1
    return out;
  }
  std::vector<uint16_t> bits(out.size());
  cache.download(bits.data(), bits.size() * 2, static_cast<size_t>(layer * m.layer_stride) * 2);
  for (size_t i = 0; i < bits.size(); ++i) out[i] = bf16_to_f32(bits[i]);
  return out;
}

}  // namespace iol::backend::cuda
