#include "iol/engine/generator.hpp"

#include <chrono>
#include <numeric>
#include <random>

#include "iol/core/error.hpp"
#include "iol/core/rng.hpp"
#include "iol/engine/stop_checker.hpp"
#include "iol/tokenizer/incremental_detokenizer.hpp"

namespace iol::engine {

const char* finish_reason_name(FinishReason reason) { return reason == FinishReason::Stop ? "stop" : "length"; }

Generator::Generator(backend::Backend& backend, const model::ModelConfig& config,
                     const tokenizer::Vocabulary* vocabulary)
    : backend_(backend), config_(config), vocabulary_(vocabulary) {}

GenerationResult Generator::generate(std::span<const int32_t> prompt_ids, const sampling::SamplingParams& params,
                                     const TextCallback& on_text) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const int64_t vocab = config_.vocab_size;
  params.validate(vocab);
  if (prompt_ids.empty()) fail("prompt is empty: give at least one token");
  for (auto id : prompt_ids)
    if (id < 0 || id >= vocab) fail("prompt token id {} is outside the vocabulary [0, {})", id, vocab);
  if (!params.stop.empty() && !vocabulary_) fail("stop strings need a tokenizer (tokenizer.json) to decode text");
  const auto& kv = backend_.kv_cache_shape();
  const int64_t capacity = std::min(kv.num_blocks * kv.block_size, config_.max_position_embeddings);
  const int64_t needed = static_cast<int64_t>(prompt_ids.size()) + params.max_tokens;
  if (needed > capacity)
    fail("prompt ({} tokens) + max_tokens ({}) = {} exceeds the maximum model length {}", prompt_ids.size(),
         params.max_tokens, needed, capacity);

  // This request owns blocks 0..n-1 of the pool, in order.
  const int32_t num_blocks = static_cast<int32_t>((needed + kv.block_size - 1) / kv.block_size);
  std::vector<int32_t> block_table(static_cast<size_t>(num_blocks));
  std::iota(block_table.begin(), block_table.end(), 0);

  // Tokens that end the request, masked while fewer than min_tokens exist.
  std::vector<int32_t> stop_ids = params.stop_token_ids;
  if (!params.ignore_eos)
    for (auto id : config_.eos_token_ids) stop_ids.push_back(static_cast<int32_t>(id));

  Rng rng(params.seed ? *params.seed : std::random_device{}());
  std::optional<tokenizer::IncrementalDetokenizer> detokenizer;
  if (vocabulary_) detokenizer.emplace(*vocabulary_);
  StopChecker stop_checker(params.stop);
  size_t streamed = 0;  // bytes of result.text handed to on_text

  GenerationResult result;
  std::vector<int32_t> step_ids(prompt_ids.begin(), prompt_ids.end());
  int32_t position = 0;
  std::vector<float> logits(static_cast<size_t>(vocab));
  while (true) {
    const int32_t n = static_cast<int32_t>(step_ids.size());
    std::vector<int32_t> positions(static_cast<size_t>(n));
    std::vector<int64_t> slots(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
      positions[static_cast<size_t>(i)] = position + i;
      slots[static_cast<size_t>(i)] =
          static_cast<int64_t>(block_table[static_cast<size_t>((position + i) / kv.block_size)]) * kv.block_size +
          (position + i) % kv.block_size;
    }
    const int32_t query_start[2] = {0, n};
    const int32_t context_len = position + n;
    const int32_t logits_row = n - 1;
    backend::ForwardBatch batch{step_ids, positions, slots, query_start, {&context_len, 1}, block_table,
                                num_blocks, {&logits_row, 1}};
    backend_.forward(batch, logits);
    position += n;

    const bool before_min = static_cast<int32_t>(result.output_ids.size()) < params.min_tokens;
    sampling::SampledToken sampled =
        sampling::sample(logits, params, prompt_ids, result.output_ids,
                         before_min ? std::span<const int32_t>(stop_ids) : std::span<const int32_t>(), rng);
    if (result.output_ids.empty()) result.ttft_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    result.output_ids.push_back(sampled.token);
    result.tokens.push_back(std::move(sampled));
    const int32_t token = result.output_ids.back();

    bool finished = false, cut_by_stop_string = false;
    if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
      result.finish_reason = FinishReason::Stop;
      finished = true;
    }
    if (detokenizer) {
      std::string piece = finished ? std::string() : detokenizer->add(token);
      result.text += piece;
      if (auto cut = stop_checker.find_stop(result.text, piece.size())) {
        result.text.resize(*cut);
        result.finish_reason = FinishReason::Stop;
        finished = cut_by_stop_string = true;
      }
    }
    if (!finished && static_cast<int32_t>(result.output_ids.size()) >= params.max_tokens) {
      result.finish_reason = FinishReason::Length;
      finished = true;
    }
    if (detokenizer && finished && !cut_by_stop_string) result.text += detokenizer->flush();
    if (on_text) {
      size_t ready = finished ? result.text.size() : stop_checker.streamable_prefix(result.text);
      if (ready > streamed) {
        on_text(std::string_view(result.text).substr(streamed, ready - streamed));
        streamed = ready;
      }
    }
    if (finished) break;
    step_ids.assign(1, token);
  }
  result.total_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace iol::engine
