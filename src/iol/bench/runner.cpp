#include "iol/bench/runner.hpp"

#include <algorithm>
#include <deque>
#include <thread>

#include <nlohmann/json.hpp>

namespace iol::bench {

std::vector<RequestTrace> InProcessRunner::run(const std::vector<BenchRequest>& requests, const SweepPoint& point,
                                               const WorkloadSpec& spec, const ProgressCallback& progress) {
  std::vector<RequestTrace> traces(requests.size());
  std::vector<engine::RequestId> ids(requests.size(), -1);
  std::vector<bool> sent(requests.size(), false), finished(requests.size(), false);
  const double t0 = engine_.now();
  int64_t done = 0, output_tokens = 0;

  auto submit = [&](size_t i, double arrival) {
    RequestTrace& trace = traces[i];
    trace.index = static_cast<int64_t>(i);
    trace.warmup = requests[i].warmup;
    trace.input_tokens = static_cast<int64_t>(requests[i].prompt_ids.size());
    trace.arrival = arrival;
    sampling::SamplingParams params;
    params.temperature = 0.0f;
    params.max_tokens = requests[i].output_len;
    params.ignore_eos = spec.ignore_eos;
    sent[i] = true;
    try {
      ids[i] = engine_.add_request(requests[i].prompt_ids, params, [&, i](const engine::RequestOutput& out) {
        RequestTrace& t = traces[i];
        const double now = engine_.now() - t0;
        if (out.new_token_id >= 0) {
          if (t.first_token < 0) t.first_token = now;
          t.token_times.push_back(now);
          ++t.output_tokens;
          ++output_tokens;
        }
        if (out.finished) {
          t.finished = now;
          finished[i] = true;
          const engine::FinishReason reason = out.sequence.finish_reason();
          t.status = reason == engine::FinishReason::Abort   ? RequestStatus::Aborted
                     : reason == engine::FinishReason::Error ? RequestStatus::Failed
                                                             : RequestStatus::Ok;
          if (reason == engine::FinishReason::Error) t.error = out.sequence.error();
          if (reason == engine::FinishReason::Abort && stop_requested()) t.error = "interrupted";
          t.cached_prompt_tokens = out.sequence.num_cached_prompt_tokens;
          t.preemptions = out.sequence.num_preemptions;
          ++done;
        }
      });
    } catch (const std::exception& e) {
      traces[i].status = RequestStatus::Failed;
      traces[i].error = e.what();
      finished[i] = true;
      ++done;
    }
  };
  // On a stop request: abort what is in flight, keep the traces of what was sent.
  auto stop = [&] {
    for (size_t i = 0; i < requests.size(); ++i)
      if (sent[i] && !finished[i] && ids[i] >= 0) engine_.abort_request(ids[i]);
    while (engine_.has_unfinished()) engine_.step();
    after_ = engine_.stats();
    std::vector<RequestTrace> kept;
    for (size_t i = 0; i < requests.size(); ++i)
      if (sent[i]) kept.push_back(std::move(traces[i]));
    return kept;
  };
  auto drain = [&] {
    while (engine_.has_unfinished() && !stop_requested()) engine_.step();
  };

  // Warm-up requests run first, as their own offline batch.
  size_t first = 0;
  while (first < requests.size() && requests[first].warmup) submit(first++, engine_.now() - t0);
  drain();
  if (stop_requested()) return stop();
  engine_.reset_peak_stats();
  before_ = engine_.stats();
  const double measured_start = engine_.now() - t0;

  std::deque<size_t> queue;
  for (size_t i = first; i < requests.size(); ++i) queue.push_back(i);
  std::vector<double> due;  // open loop: arrival offsets
  if (point.mode == ArrivalMode::Poisson)
    due = gamma_arrival_times(static_cast<int64_t>(queue.size()), point.request_rate, spec.burstiness, spec.seed);
  size_t next_due = 0;
  const int64_t total = static_cast<int64_t>(queue.size());
  const int64_t done_before = done;
  int64_t last_reported = -1;

  while (!queue.empty() || engine_.has_unfinished()) {
    if (stop_requested()) return stop();
    const double now = engine_.now() - t0;
    if (point.mode == ArrivalMode::Offline) {
      while (!queue.empty()) {
        submit(queue.front(), now);
        queue.pop_front();
      }
    } else if (point.mode == ArrivalMode::Closed) {
      // Keep `concurrency` requests in flight: a finished one is replaced at once.
      int64_t in_flight = static_cast<int64_t>(requests.size() - queue.size()) - done;
      while (!queue.empty() && in_flight < point.concurrency) {
        submit(queue.front(), now);
        queue.pop_front();
        ++in_flight;
      }
    } else {
      // Open loop: the arrival is the due time, not when the engine got around to it.
      while (!queue.empty() && measured_start + due[next_due] <= now) {
        submit(queue.front(), measured_start + due[next_due++]);
        queue.pop_front();
      }
      if (!engine_.has_unfinished() && !queue.empty()) {
        // In slices, so that a stop request is seen within 50 ms even at a low request rate.
        std::this_thread::sleep_for(std::chrono::duration<double>(std::min(0.05, measured_start + due[next_due] - now)));
        continue;
      }
    }
    if (engine_.has_unfinished()) engine_.step();
    if (progress && done - done_before != last_reported) {
      last_reported = done - done_before;
      progress(last_reported, total, output_tokens);
    }
  }
  after_ = engine_.stats();
  return traces;
}

nlohmann::json InProcessRunner::target_stats() const {
  const int64_t steps = after_.num_steps - before_.num_steps;
  const double total_blocks = static_cast<double>(after_.blocks.num_blocks);
  const int64_t queried = after_.blocks.prefix_queried_tokens - before_.blocks.prefix_queried_tokens;
  const int64_t hits = after_.blocks.prefix_hit_tokens - before_.blocks.prefix_hit_tokens;
  // Device busy and idle time over the measured steps (null where the backend cannot time it).
  nlohmann::json busy = nullptr, idle = nullptr, idle_fraction = nullptr;
  if (after_.device && before_.device) {
    const double b = after_.device->busy_s - before_.device->busy_s, i = after_.device->idle_s - before_.device->idle_s;
    busy = b, idle = i;
    if (b + i > 0) idle_fraction = i / (b + i);
  }
  // Speculative decoding over the measured steps (null without it).
  nlohmann::json speculative = nullptr;
  const engine::SpeculativeStats &sa = after_.speculative, &sb = before_.speculative;
  if (engine_.config().speculative.enabled()) {
    const int64_t spec_steps = sa.num_speculative_steps - sb.num_speculative_steps;
    const int64_t proposed = sa.num_proposed_tokens - sb.num_proposed_tokens;
    const int64_t accepted = sa.num_accepted_tokens - sb.num_accepted_tokens;
    const double draft_s = sa.draft_seconds - sb.draft_seconds, step_s = sa.step_seconds - sb.step_seconds;
    speculative = {{"num_speculative_steps", spec_steps},
                   {"num_proposed_tokens", proposed},
                   {"num_accepted_tokens", accepted},
                   {"acceptance_rate", proposed > 0 ? static_cast<double>(accepted) / static_cast<double>(proposed) : 0.0},
                   {"mean_accepted_length", spec_steps > 0 ? static_cast<double>(accepted) / static_cast<double>(spec_steps) : 0.0},
                   {"draft_time_s", draft_s},
                   {"draft_time_share", step_s > 0 ? draft_s / step_s : 0.0}};
  }
  return {{"num_steps", steps},
          {"speculative", speculative},
          {"device_busy_s", busy},
          {"device_idle_s", idle},
          {"device_idle_fraction", idle_fraction},
          {"num_preemptions", after_.num_preemptions - before_.num_preemptions},
          {"peak_num_running", after_.peak_num_running},
          {"kv_blocks_total", after_.blocks.num_blocks},
          {"kv_peak_usage", static_cast<double>(after_.peak_used_blocks) / total_blocks},
          {"kv_mean_usage",
           steps > 0 ? static_cast<double>(after_.sum_used_blocks - before_.sum_used_blocks) / static_cast<double>(steps) / total_blocks : 0.0},
          {"prefix_cache_queried_tokens", queried},
          {"prefix_cache_hit_rate", queried > 0 ? static_cast<double>(hits) / static_cast<double>(queried) : 0.0}};
}

}  // namespace iol::bench
