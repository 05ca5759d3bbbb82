// Sequence: one request inside the engine — its tokens, how many have K/V computed, its block
// table, its sampler state and its output (stop conditions, streamed text, timestamps).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "iol/engine/stop_checker.hpp"
#include "iol/sampling/sampler.hpp"
#include "iol/tokenizer/incremental_detokenizer.hpp"

namespace iol::engine {

using RequestId = int64_t;

enum class SequenceStatus { Waiting, Running, Finished };
// Error: the request failed while running (e.g. non-finite logits); error() says why.
enum class FinishReason { None, Length, Stop, Abort, Error };
const char* finish_reason_name(FinishReason reason);

// Seconds on the engine's steady clock (Engine::now()).
struct RequestTimestamps {
  double arrival = 0;
  double first_scheduled = -1;
  double first_token = -1;
  double finished = -1;
  std::vector<double> token_times;  // one per output token
};

class Sequence {
 public:
  // block_size > 0: block hashes are kept for the prefix cache; 0: not.
  Sequence(RequestId id, std::vector<int32_t> prompt_ids, sampling::SamplingParams params,
           std::vector<int32_t> eos_token_ids, const tokenizer::Vocabulary* vocabulary, double arrival,
           int64_t block_size = 0);

  RequestId id() const { return id_; }  // the request; its parallel samples share it
  int32_t sample_index() const { return sample_index_; }
  // A parallel sample of this sequence before its first output token: same tokens and state,
  // its own random generator. The caller gives it its block table (BlockManager::fork).
  std::unique_ptr<Sequence> fork(int32_t sample_index) const;
  int64_t num_tokens() const { return static_cast<int64_t>(token_ids_.size()); }
  int64_t num_prompt_tokens() const { return num_prompt_tokens_; }
  int64_t num_output_tokens() const { return num_tokens() - num_prompt_tokens_; }
  const std::vector<int32_t>& token_ids() const { return token_ids_; }
  std::span<const int32_t> prompt_ids() const { return {token_ids_.data(), static_cast<size_t>(num_prompt_tokens_)}; }
  std::span<const int32_t> output_ids() const {
    return {token_ids_.data() + num_prompt_tokens_, static_cast<size_t>(num_output_tokens())};
  }
  const sampling::SamplingParams& params() const { return params_; }

  // Tokens whose K/V is in the cache; the rest are computed by coming steps.
  int64_t num_computed_tokens = 0;
  std::vector<int32_t> block_table;
  SequenceStatus status = SequenceStatus::Waiting;
  int64_t num_preemptions = 0;
  int64_t num_cached_prompt_tokens = 0;  // prefix-cache hit at first admission
  int64_t num_committed_blocks = 0;      // full blocks registered in the prefix cache (reset on preemption)
  // Chained prefix-cache hashes of the full blocks of token_ids(), extended as tokens arrive.
  const std::vector<uint64_t>& block_hashes() const { return block_hashes_; }
  RequestTimestamps timestamps;

  // Appends the token the backend drew for this sequence and applies the stop conditions.
  // Returns the text that became final for streaming.
  std::string append_token(sampling::SampledToken sampled, double now);
  // The seed of this request's random stream (the request's, or drawn once at arrival), so a
  // draw depends only on (seed, sample_index, output position): the same alone or batched,
  // before or after preemption, on either backend.
  uint64_t seed() const { return seed_; }
  // Token ids whose logits are -inf for the next draw: EOS and stop ids before min_tokens.
  std::span<const int32_t> masked_token_ids() const { return masked_token_ids_at(num_output_tokens()); }
  // The same for the draw of output token `output_position` (a speculative run's later rows).
  std::span<const int32_t> masked_token_ids_at(int64_t output_position) const {
    return output_position < params_.min_tokens ? std::span<const int32_t>(stop_token_ids_) : std::span<const int32_t>();
  }
  // stop_token_ids + EOS unless ignore_eos.
  std::span<const int32_t> stop_token_ids() const { return stop_token_ids_; }
  // Whether this sequence forks its n - 1 parallel samples once its prompt is done (and so
  // holds n of max_num_seqs seats until then).
  bool will_fork() const { return params_.n > 1 && sample_index_ == 0 && num_output_tokens() == 0; }
  // Ends the request (abort); text still pending is not emitted.
  void abort(double now);
  // Ends the request as failed, e.g. when its logits held NaN/Inf; other requests continue.
  void fail_request(std::string error, double now);
  const std::string& error() const { return error_; }

  bool finished() const { return status == SequenceStatus::Finished; }
  FinishReason finish_reason() const { return finish_reason_; }
  const std::string& text() const { return text_; }
  const std::vector<sampling::SampledToken>& sampled() const { return sampled_; }

 private:
  void finish(FinishReason reason, double now);

  RequestId id_;
  int32_t sample_index_ = 0;
  std::vector<int32_t> token_ids_;
  int64_t num_prompt_tokens_;
  sampling::SamplingParams params_;
  std::vector<int32_t> stop_token_ids_;  // stop_token_ids + EOS unless ignore_eos
  uint64_t seed_;
  int64_t block_size_;
  std::vector<uint64_t> block_hashes_;
  std::optional<tokenizer::IncrementalDetokenizer> detokenizer_;
  StopChecker stop_checker_;
  std::string text_;
  size_t streamed_bytes_ = 0;
  std::vector<sampling::SampledToken> sampled_;
  FinishReason finish_reason_ = FinishReason::None;
  std::string error_;
};

}  // namespace iol::engine
