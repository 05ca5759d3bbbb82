#include "iol/bench/http_runner.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "iol/bench/prometheus_text.hpp"
#include "iol/core/error.hpp"
#include "iol/tokenizer/tokenizer.hpp"

namespace iol::bench {

namespace {

using Json = nlohmann::json;

// The server's counters at one moment, from /metrics (vLLM's names; older vLLM's gpu_ names too).
struct ServerCounters {
  std::optional<double> preemptions, prefix_queries, prefix_hits, kv_usage;
};

ServerCounters scrape(HttpLoadClient& client) {
  HttpCall call;
  call.method = "GET";
  call.path = "/metrics";
  HttpCallResult r = client.request(call);
  ServerCounters c;
  if (r.status != 200) return c;
  c.preemptions = prometheus_value(r.body, "vllm:num_preemptions_total");
  c.prefix_queries = prometheus_value(r.body, "vllm:prefix_cache_queries_total");
  c.prefix_hits = prometheus_value(r.body, "vllm:prefix_cache_hits_total");
  c.kv_usage = prometheus_value(r.body, "vllm:kv_cache_usage_perc");
  if (!c.kv_usage) c.kv_usage = prometheus_value(r.body, "vllm:gpu_cache_usage_perc");
  return c;
}

Json optional_json(std::optional<double> v) { return v ? Json(*v) : Json(nullptr); }

}  // namespace

ServedModel first_served_model(const HttpTarget& target, const std::string& api_key) {
  HttpLoadClient client(target, api_key, 30);
  HttpCall call;
  call.method = "GET";
  call.path = "/v1/models";
  HttpCallResult r = client.request(call);
  if (r.status != 200)
    fail("{}/v1/models: {} (pass --model NAME)", target.url(), r.status ? fmt::format("HTTP {}", r.status) : r.error);
  Json j = Json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].contains("id") || !j["data"][0]["id"].is_string())
    fail("{}/v1/models: no model listed (pass --model NAME)", target.url());
  const Json& model = j["data"][0];
  return {model["id"].get<std::string>(),
          model.contains("owned_by") && model["owned_by"].is_string() ? model["owned_by"].get<std::string>() : ""};
}

HttpRunner::HttpRunner(HttpRunnerOptions options) : options_(std::move(options)) {
  if (options_.endpoint != "completions" && options_.endpoint != "chat")
    throw UsageError(fmt::format("--endpoint must be completions or chat (got '{}')", options_.endpoint));
  if (options_.endpoint == "chat" && !options_.tokenizer)
    throw UsageError("--endpoint chat sends text: it needs the model's tokenizer (--model DIR, --preset or --tokenizer DIR)");
}

std::string HttpRunner::request_body(const BenchRequest& request, const WorkloadSpec& spec) const {
  Json body = {{"model", options_.model},
               {"max_tokens", request.output_len},
               {"temperature", 0.0},
               {"ignore_eos", spec.ignore_eos},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (options_.endpoint == "chat") {
    std::vector<int64_t> ids(request.prompt_ids.begin(), request.prompt_ids.end());
    body["messages"] = Json::array({{{"role", "user"}, {"content", options_.tokenizer->decode(ids)}}});
  } else {
    body["prompt"] = request.prompt_ids;  // token ids: the server sees exactly the drawn lengths
  }
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

RequestTrace HttpRunner::trace_from(const HttpCallResult& r, const BenchRequest& request, double arrival) const {
  RequestTrace t;
  t.warmup = request.warmup;
  t.input_tokens = static_cast<int64_t>(request.prompt_ids.size());
  t.arrival = arrival;
  t.finished = r.finished;
  if (r.status != 200) {
    t.status = RequestStatus::Failed;
    t.error = r.status ? fmt::format("HTTP {}", r.status) : r.error;
    return t;
  }
  std::string text;
  std::optional<int64_t> completion_tokens;
  bool done = false;
  for (size_t i = 0; i < r.events.size(); ++i) {
    if (r.events[i] == "[DONE]") {
      done = true;
      continue;
    }
    Json chunk = Json::parse(r.events[i], nullptr, false);
    if (chunk.is_discarded() || !chunk.is_object()) continue;
    if (chunk.contains("error")) {
      t.status = RequestStatus::Failed;
      t.error = chunk["error"].value("message", std::string("error event"));
      return t;
    }
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      const Json& u = chunk["usage"];
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
        completion_tokens = u["completion_tokens"].get<int64_t>();
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
        t.input_tokens = u["prompt_tokens"].get<int64_t>();
    }
    if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) continue;
    const Json& choice = chunk["choices"][0];
    const Json* piece = nullptr;
    if (choice.contains("text")) piece = &choice["text"];
    else if (choice.contains("delta") && choice["delta"].contains("content") && !choice["delta"].contains("role"))
      piece = &choice["delta"]["content"];
    if (!piece || !piece->is_string()) continue;
    // A chunk that carries output: the token (or tokens) arrived now.
    if (t.first_token < 0) t.first_token = r.event_times[i];
    t.token_times.push_back(r.event_times[i]);
    text += piece->get<std::string>();
  }
  if (!done) {
    t.status = RequestStatus::Failed;
    t.error = "the stream ended without data: [DONE]";
    return t;
  }
  if (completion_tokens) t.output_tokens = *completion_tokens;
  else if (options_.tokenizer) t.output_tokens = static_cast<int64_t>(options_.tokenizer->encode(text, false).size());
  else t.output_tokens = static_cast<int64_t>(t.token_times.size());
  if (t.first_token < 0) t.first_token = r.finished;
  return t;
}

std::vector<RequestTrace> HttpRunner::run(const std::vector<BenchRequest>& requests, const SweepPoint& point,
                                          const WorkloadSpec& spec, const ProgressCallback& progress) {
  HttpLoadClient client(options_.target, options_.api_key);
  std::vector<RequestTrace> traces(requests.size());
  std::vector<HttpCall> warmup, measured;
  std::vector<size_t> warmup_index, measured_index;
  for (size_t i = 0; i < requests.size(); ++i) {
    HttpCall call;
    call.path = options_.endpoint == "chat" ? "/v1/chat/completions" : "/v1/completions";
    call.body = request_body(requests[i], spec);
    (requests[i].warmup ? warmup : measured).push_back(std::move(call));
    (requests[i].warmup ? warmup_index : measured_index).push_back(i);
  }
  // Warm-up requests first, all at once, as the in-process runner does.
  if (!warmup.empty()) {
    auto results = client.run(warmup, static_cast<int64_t>(warmup.size()));
    for (size_t k = 0; k < results.size(); ++k) {
      traces[warmup_index[k]] = trace_from(results[k], requests[warmup_index[k]], results[k].sent);
      traces[warmup_index[k]].index = static_cast<int64_t>(warmup_index[k]);
    }
  }
  int64_t concurrency = static_cast<int64_t>(measured.size());
  if (point.mode == ArrivalMode::Closed) concurrency = point.concurrency;
  if (point.mode == ArrivalMode::Poisson) {
    concurrency = 0;
    auto due = gamma_arrival_times(static_cast<int64_t>(measured.size()), point.request_rate, spec.burstiness, spec.seed);
    for (size_t k = 0; k < measured.size(); ++k) measured[k].start_at = due[k];
  }

  // Server-side counters: before, after, and KV usage sampled in between.
  const ServerCounters before = scrape(client);
  std::vector<double> kv_samples;
  std::mutex sampler_mutex;
  std::condition_variable sampler_stop;
  bool stop = false;
  std::thread sampler([&] {
    HttpLoadClient metrics_client(options_.target, options_.api_key, 10);
    std::unique_lock lock(sampler_mutex);
    while (!stop) {
      lock.unlock();
      ServerCounters c = scrape(metrics_client);
      lock.lock();
      if (c.kv_usage) kv_samples.push_back(*c.kv_usage);
      sampler_stop.wait_for(lock, std::chrono::duration<double>(options_.metrics_interval_s), [&] { return stop; });
    }
  });
  int64_t done = 0, output_tokens = 0;
  auto results = client.run(measured, concurrency, [&](size_t k, const HttpCallResult& r) {
    ++done;
    output_tokens += static_cast<int64_t>(r.events.size());  // progress only: chunks, close to tokens
    if (progress) progress(done, static_cast<int64_t>(measured.size()), output_tokens);
    (void)k;
  });
  {
    std::lock_guard lock(sampler_mutex);
    stop = true;
  }
  sampler_stop.notify_all();
  sampler.join();
  const ServerCounters after = scrape(client);

  // Times are relative to the measured run's start (the client's clock).
  for (size_t k = 0; k < results.size(); ++k) {
    const double arrival = point.mode == ArrivalMode::Poisson ? measured[k].start_at : results[k].sent;
    traces[measured_index[k]] = trace_from(results[k], requests[measured_index[k]], arrival);
    traces[measured_index[k]].index = static_cast<int64_t>(measured_index[k]);
  }
  auto diff = [](std::optional<double> a, std::optional<double> b) {
    return a && b ? std::optional<double>(*b - *a) : std::nullopt;
  };
  const auto queries = diff(before.prefix_queries, after.prefix_queries), hits = diff(before.prefix_hits, after.prefix_hits);
  std::optional<double> hit_rate;
  if (queries && hits) hit_rate = *queries > 0 ? *hits / *queries : 0.0;
  std::optional<double> peak, mean;
  if (!kv_samples.empty()) {
    peak = *std::max_element(kv_samples.begin(), kv_samples.end());
    double sum = 0;
    for (double v : kv_samples) sum += v;
    mean = sum / static_cast<double>(kv_samples.size());
  }
  const auto preemptions = diff(before.preemptions, after.preemptions);
  stats_ = {{"url", options_.target.url()},
            {"endpoint", options_.endpoint},
            {"served_model", options_.model},
            {"metrics_available", before.kv_usage.has_value()},
            {"metrics_samples", kv_samples.size()},
            {"num_preemptions", preemptions ? Json(static_cast<int64_t>(*preemptions)) : Json(nullptr)},
            {"kv_peak_usage", optional_json(peak)},
            {"kv_mean_usage", optional_json(mean)},
            {"prefix_cache_queried_tokens", queries ? Json(static_cast<int64_t>(*queries)) : Json(nullptr)},
            {"prefix_cache_hit_rate", optional_json(hit_rate)}};
  return traces;
}

}  // namespace iol::bench
