// EngineClient: the one way in and out of an Engine for the server, the in-process bench and
// generate alike. Any thread adds requests (validated at once) and aborts them; one engine
// thread runs run(), the only code that touches the engine's state. Outputs leave as values
// (OutputEvent) through each request's OutputStream, never as references into engine state, so
// a consumer on another thread reads them at its own pace. A backend failure marks the client
// dead and ends every in-flight stream with the error instead of leaving it waiting.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "iol/engine/engine.hpp"

namespace iol::engine {

// One output of one sample of a request, by value.
struct OutputEvent {
  int32_t sample_index = 0;
  int32_t token_id = -1;  // -1: the sample ended without a new token (abort, engine failure)
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top_logprobs;
  std::string text;       // text that became final with this token (stop strings held back)
  bool finished = false;
  FinishReason finish_reason = FinishReason::None;
  std::string error;      // set when the engine or this request failed: the request did not complete
  // Set on the finishing event: counts and engine-clock times (seconds, Engine::now()).
  int64_t num_prompt_tokens = 0;
  int64_t num_output_tokens = 0;
  int64_t num_cached_prompt_tokens = 0;
  int64_t num_preemptions = 0;
  double arrival = -1, first_scheduled = -1, first_token = -1, finished_at = -1;
};

// The hand-off of one request's events from the engine thread to its consumer. `waker` is called
// (on the engine thread) when events arrive while none were waiting to be taken, so a consumer
// can sleep between batches of events; it must not block.
class OutputStream {
 public:
  using Waker = std::function<void()>;
  explicit OutputStream(int32_t num_samples, Waker waker = {}) : num_samples_(num_samples), waker_(std::move(waker)) {}

  void push(OutputEvent event);
  // Everything pushed since the last take (possibly nothing).
  std::vector<OutputEvent> take();
  // Blocks until at least one event is there (for consumers that own a thread).
  std::vector<OutputEvent> wait_and_take();
  // Every sample has finished, or the request was aborted or failed: nothing more is needed.
  bool done() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<OutputEvent> events_;
  int32_t num_samples_;
  int32_t num_finished_ = 0;
  bool failed_ = false;  // aborted or failed
  Waker waker_;
};

// What the engine thread publishes after every step, for /metrics, /health and admission.
struct EngineSnapshot {
  int64_t num_running = 0;
  int64_t num_waiting = 0;
  EngineStats stats;
};

class EngineClient {
 public:
  explicit EngineClient(Engine& engine);

  // Any thread. Throws iol::Error when the request is invalid (Engine::add_request's checks) or
  // the engine is dead or stopping.
  RequestId add_request(std::vector<int32_t> prompt_ids, const sampling::SamplingParams& params,
                        std::shared_ptr<OutputStream> stream);
  // Any thread: the request leaves at the next step and frees its KV blocks; its stream gets a
  // finished event with FinishReason::Abort. Unknown or finished ids are ignored.
  void abort(RequestId id);
  // Aborts every in-flight request (graceful shutdown past its timeout).
  void abort_all();

  // The engine thread: steps while there is work, sleeps otherwise, until stop() (then returns
  // once in-flight requests are done or aborted) or a backend failure (then returns after failing
  // every in-flight stream).
  void run();
  // Any thread: no new requests; run() returns when the engine has nothing left to do.
  void stop();

  bool dead() const { return dead_.load(); }
  std::string dead_reason() const;
  EngineSnapshot snapshot() const;
  // Requests in the engine's waiting queue or on their way to it (admission control).
  int64_t num_waiting() const;
  bool has_unfinished() const { return engine_.has_unfinished(); }
  const EngineConfig& config() const { return engine_.config(); }
  double now() const { return engine_.now(); }
  // Engine-thread only (tests, after run() returned): the engine's own accounting check.
  std::string check_invariants() const { return engine_.check_invariants(); }

 private:
  void publish();
  void fail_all(const std::string& reason);

  Engine& engine_;
  mutable std::mutex mutex_;  // guards the fields below; never held while the engine steps
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string dead_reason_;
  EngineSnapshot snapshot_;
  // In-flight streams (weak: the consumer owns them), for abort_all and for failing them all.
  std::vector<std::pair<RequestId, std::weak_ptr<OutputStream>>> streams_;
  std::atomic<bool> dead_{false};
  std::atomic<int64_t> num_queued_{0};  // added since the engine last drained its queue
};

}  // namespace iol::engine
