// Engine: continuous batching over a Backend. add_request/abort_request may be called from any
// thread (they only enqueue); step() runs in one engine thread and owns the scheduler, the
// block manager and the backend — no locks inside the step beyond draining that queue.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/engine/batch_builder.hpp"
#include "iol/engine/block_manager.hpp"
#include "iol/engine/engine_config.hpp"
#include "iol/engine/scheduler.hpp"
#include "iol/engine/sequence.hpp"
#include "iol/model/model_config.hpp"
#include "iol/spec/proposer.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol::engine {

// Delivered on the engine thread after each step that produced a token (or on finish/abort).
struct RequestOutput {
  RequestId request_id;
  int32_t sample_index = 0;       // which of the request's n parallel samples
  int32_t new_token_id = -1;      // -1 when the request ended without a new token (abort)
  std::string_view new_text;      // text that became final with this token
  bool finished = false;
  const Sequence& sequence;       // full state: ids, text, logprobs, timestamps
};
using OutputCallback = std::function<void(const RequestOutput&)>;

// Speculative decoding counters (docs/speculative.md). A speculative step of a sequence verifies
// its proposals and emits accepted + 1 tokens (the bonus or the correction) unless it stops first.
struct SpeculativeStats {
  int64_t num_speculative_steps = 0;  // sequence-steps that verified at least one proposal
  int64_t num_proposed_tokens = 0;
  int64_t num_accepted_tokens = 0;
  double draft_seconds = 0.0;         // wall time in the proposer
  double step_seconds = 0.0;          // wall time of every step with scheduled work (proposer included)

  double acceptance_rate() const {
    return num_proposed_tokens ? static_cast<double>(num_accepted_tokens) / static_cast<double>(num_proposed_tokens) : 0.0;
  }
  // Accepted proposals per speculative step (vLLM reports 1 + this as the mean acceptance length).
  double mean_accepted_length() const {
    return num_speculative_steps ? static_cast<double>(num_accepted_tokens) / static_cast<double>(num_speculative_steps) : 0.0;
  }
  double draft_time_share() const { return step_seconds > 0 ? draft_seconds / step_seconds : 0.0; }
};

struct EngineStats {
  int64_t num_steps = 0;
  int64_t num_preemptions = 0;
  int64_t num_finished = 0;
  int64_t num_aborted = 0;
  int64_t num_failed = 0;  // ended by FinishReason::Error
  int64_t peak_num_running = 0;
  int64_t peak_used_blocks = 0;
  int64_t sum_used_blocks = 0;  // over steps, for the mean KV usage
  BlockManagerStats blocks;
  SpeculativeStats speculative;
  std::optional<backend::DeviceTimeline> device;  // where the backend times the device
};

class Engine {
 public:
  // With config.speculative enabled the backend must support verification; `proposer` is the
  // draft-model proposer for SpeculativeMethod::DraftModel (the n-gram one is built here).
  Engine(const EngineConfig& config, backend::Backend& backend, const model::ModelConfig& model_config,
         const tokenizer::Vocabulary* vocabulary, std::unique_ptr<spec::Proposer> proposer = nullptr);

  // Validates now (throws iol::Error: empty prompt, too long, bad sampling params); thread-safe.
  RequestId add_request(std::vector<int32_t> prompt_ids, const sampling::SamplingParams& params,
                        OutputCallback on_output = {});
  void abort_request(RequestId id);  // thread-safe; unknown or finished ids are ignored
  bool has_unfinished() const;       // thread-safe
  void step();
  EngineStats stats() const;
  // Engine thread only: the scheduler's queues after the last step.
  int64_t num_running() const { return static_cast<int64_t>(scheduler_.num_running()); }
  int64_t num_waiting() const { return static_cast<int64_t>(scheduler_.num_waiting()); }
  // Restarts the peak and mean counters (after a benchmark's warm-up).
  void reset_peak_stats();
  const EngineConfig& config() const { return config_; }
  double now() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  // Checks block accounting against the live sequences (tests); returns the first violation or "".
  std::string check_invariants() const;

 private:
  struct Entry {
    std::unique_ptr<Sequence> sequence;
    OutputCallback on_output;
  };
  // live_ key of one sequence: a request's samples share its id.
  static int64_t key_of(RequestId id, int32_t sample_index) { return id * sampling::kMaxParallelSamples + sample_index; }
  void drain_incoming();
  // Creates samples 1..n-1 of a request whose prompt just completed; returns all n.
  std::vector<Sequence*> fork_samples(Sequence& parent);
  void run_batch(const SchedulerOutput& scheduled);
  // Asks the proposer for the sequences given lookahead slots; fills proposal_spans_.
  void propose(const SchedulerOutput& scheduled);
  // A sequence ended: its callback has run; it leaves live_ after the step's rows are processed.
  void retire(Sequence& sequence);

  EngineConfig config_;
  backend::Backend& backend_;
  const model::ModelConfig& model_config_;
  const tokenizer::Vocabulary* vocabulary_;
  BlockManager block_manager_;
  Scheduler scheduler_;
  BatchBuilder batch_builder_;
  std::vector<std::vector<Sequence*>> step_samplers_;  // per scheduled sequence, reused
  sampling::SampledBatch sampled_;                      // the backend's output, reused
  std::unique_ptr<spec::Proposer> proposer_;
  std::vector<spec::ProposalRequest> proposal_requests_;
  spec::ProposalBatch proposals_;
  std::vector<std::span<const int32_t>> proposal_spans_;  // per scheduled sequence
  std::vector<int32_t> draft_probs_rows_;                 // per scheduled sequence
  std::vector<int64_t> retired_;                          // live_ keys to erase after the step
  std::unordered_map<int64_t, Entry> live_;  // by key_of(request, sample)
  EngineStats stats_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();

  mutable std::mutex incoming_mutex_;
  std::vector<Entry> incoming_;
  std::vector<RequestId> incoming_aborts_;
  std::atomic<RequestId> next_id_{0};
  std::atomic<int64_t> num_unfinished_{0};
};

}  // namespace iol::engine
