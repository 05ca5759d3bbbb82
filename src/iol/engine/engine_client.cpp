#include "iol/engine/engine_client.hpp"

#include <algorithm>

#include "iol/core/error.hpp"

namespace iol::engine {

void OutputStream::push(OutputEvent event) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    // An abort ends the whole request: samples not yet forked never report.
    if (!event.error.empty() || event.finish_reason == FinishReason::Abort) failed_ = true;
    else if (event.finished) ++num_finished_;
    wake = events_.empty();
    events_.push_back(std::move(event));
  }
  ready_.notify_one();
  if (wake && waker_) waker_();
}

std::vector<OutputEvent> OutputStream::take() {
  std::vector<OutputEvent> out;
  std::lock_guard lock(mutex_);
  out.swap(events_);
  return out;
}

std::vector<OutputEvent> OutputStream::wait_and_take() {
  std::unique_lock lock(mutex_);
  ready_.wait(lock, [&] { return !events_.empty(); });
  std::vector<OutputEvent> out;
  out.swap(events_);
  return out;
}

bool OutputStream::done() const {
  std::lock_guard lock(mutex_);
  return failed_ || num_finished_ >= num_samples_;
}

EngineClient::EngineClient(Engine& engine) : engine_(engine) {}

RequestId EngineClient::add_request(std::vector<int32_t> prompt_ids, const sampling::SamplingParams& params,
                                    std::shared_ptr<OutputStream> stream) {
  {
    std::lock_guard lock(mutex_);
    if (dead_) fail("engine failed: {}", dead_reason_);
    if (stopping_) fail("the server is shutting down");
  }
  // The callback runs on the engine thread; it copies what the consumer needs out of the
  // sequence, so nothing outside the engine holds a reference into its state.
  std::weak_ptr<OutputStream> weak = stream;
  const RequestId id = engine_.add_request(std::move(prompt_ids), params, [weak](const RequestOutput& out) {
    auto target = weak.lock();
    if (!target) return;
    OutputEvent event;
    event.sample_index = out.sample_index;
    event.token_id = out.new_token_id;
    event.text = std::string(out.new_text);
    event.finished = out.finished;
    const Sequence& seq = out.sequence;
    if (out.new_token_id >= 0 && !seq.sampled().empty()) {
      const auto& sampled = seq.sampled().back();
      event.logprob = sampled.logprob;
      event.top_logprobs = sampled.top_logprobs;
    }
    if (out.finished) {
      event.finish_reason = seq.finish_reason();
      // A request the engine failed (non-finite logits) ends its stream with the reason, as a
      // backend failure does, instead of looking like a normal finish.
      if (event.finish_reason == FinishReason::Error) event.error = seq.error();
      event.num_prompt_tokens = seq.num_prompt_tokens();
      event.num_output_tokens = seq.num_output_tokens();
      event.num_cached_prompt_tokens = seq.num_cached_prompt_tokens;
      event.num_preemptions = seq.num_preemptions;
      event.arrival = seq.timestamps.arrival;
      event.first_scheduled = seq.timestamps.first_scheduled;
      event.first_token = seq.timestamps.first_token;
      event.finished_at = seq.timestamps.finished;
    }
    target->push(std::move(event));
  });
  ++num_queued_;
  {
    std::lock_guard lock(mutex_);
    // Drop streams whose consumers are gone, amortized over additions.
    if (streams_.size() >= 64 && streams_.size() % 64 == 0)
      std::erase_if(streams_, [](const auto& entry) {
        auto s = entry.second.lock();
        return !s || s->done();
      });
    streams_.emplace_back(id, stream);
  }
  wake_.notify_one();
  return id;
}

void EngineClient::abort(RequestId id) {
  engine_.abort_request(id);
  wake_.notify_one();
}

void EngineClient::abort_all() {
  std::vector<RequestId> ids;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, weak] : streams_)
      if (auto s = weak.lock(); s && !s->done()) ids.push_back(id);
  }
  for (RequestId id : ids) engine_.abort_request(id);
  wake_.notify_one();
}

void EngineClient::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
}

std::string EngineClient::dead_reason() const {
  std::lock_guard lock(mutex_);
  return dead_reason_;
}

EngineSnapshot EngineClient::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

int64_t EngineClient::num_waiting() const {
  std::lock_guard lock(mutex_);
  return snapshot_.num_waiting + num_queued_.load();
}

void EngineClient::publish() {
  EngineSnapshot s{engine_.num_running(), engine_.num_waiting(), engine_.stats()};
  std::lock_guard lock(mutex_);
  snapshot_ = std::move(s);
}

void EngineClient::fail_all(const std::string& reason) {
  std::vector<std::shared_ptr<OutputStream>> live;
  {
    std::lock_guard lock(mutex_);
    dead_reason_ = reason;
    dead_ = true;
    for (const auto& [id, weak] : streams_)
      if (auto s = weak.lock(); s && !s->done()) live.push_back(std::move(s));
    streams_.clear();
  }
  for (auto& s : live) {
    OutputEvent event;
    event.finished = true;
    event.error = "engine failed: " + reason;
    s->push(std::move(event));
  }
}

void EngineClient::run() {
  publish();
  try {
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || engine_.has_unfinished(); });
        if (stopping_ && !engine_.has_unfinished()) break;
      }
      num_queued_ = 0;  // the step drains the queue (a request added meanwhile is counted twice until the next)
      engine_.step();
      publish();
    }
  } catch (const std::exception& e) {
    fail_all(e.what());
    return;
  }
  publish();
}

}  // namespace iol::engine
