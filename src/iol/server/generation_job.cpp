#include "iol/server/generation_job.hpp"

#include <chrono>
#include <random>

#include <fmt/format.h>

#include "iol/core/error.hpp"

namespace iol::server {

namespace {

using Json = nlohmann::json;

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

std::string sse(const Json& j) {
  return "data: " + j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

Json finish_json(engine::FinishReason reason) {
  return reason == engine::FinishReason::None ? Json(nullptr) : Json(engine::finish_reason_name(reason));
}

}  // namespace

GenerationJob::GenerationJob(PreparedGeneration prepared, const tokenizer::Vocabulary* vocabulary, ServerMetrics& metrics,
                             engine::OutputStream::Waker waker)
    : prepared_(std::move(prepared)), vocabulary_(vocabulary), metrics_(metrics), waker_(std::move(waker)) {
  const size_t n = static_cast<size_t>(prepared_.request.params.n);
  choices_.resize(prepared_.prompt_ids.size() * n);
  for (auto& c : choices_)
    c.logprobs = chat() ? Json{{"content", Json::array()}}
                        : Json{{"tokens", Json::array()}, {"token_logprobs", Json::array()},
                               {"top_logprobs", Json::array()}, {"text_offset", Json::array()}};
  id_ = random_id(chat() ? "chatcmpl" : "cmpl");
  created_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void GenerationJob::start(engine::EngineClient& client) {
  for (const auto& ids : prepared_.prompt_ids) {
    auto stream = std::make_shared<engine::OutputStream>(prepared_.request.params.n, waker_);
    try {
      request_ids_.push_back(client.add_request(ids, prepared_.request.params, stream));
    } catch (const Error& e) {
      for (auto added : request_ids_) client.abort(added);  // rejected: not counted as aborted samples
      if (client.dead() || std::string_view(e.what()).find("shutting down") != std::string_view::npos)
        throw ApiError(503, e.what());
      throw ApiError(400, e.what(), chat() ? "messages" : "prompt");
    }
    streams_.push_back(std::move(stream));
    prompt_tokens_ += static_cast<int64_t>(ids.size());
    metrics_.on_request(static_cast<int64_t>(ids.size()));
  }
}

void GenerationJob::abort(engine::EngineClient& client) {
  for (auto id : request_ids_) client.abort(id);
  // The engine ends them at its next step; nobody reads those events, so count them here, once.
  for (auto& c : choices_)
    if (!c.finished && !request_ids_.empty()) {
      c.finished = true;
      c.finish_reason = engine::FinishReason::Abort;
      FinishedSample s;
      s.reason = engine::FinishReason::Abort;
      s.output_tokens = static_cast<int64_t>(c.token_ids.size());
      metrics_.on_sample_finished(s);
    }
}

std::string GenerationJob::token_text(int32_t id) const {
  return vocabulary_ ? vocabulary_->token_bytes(id) : fmt::format("token_id:{}", id);
}

void GenerationJob::add_logprobs(Choice& choice, const engine::OutputEvent& e, Json& out) const {
  if (!prepared_.request.want_logprobs || e.token_id < 0) return;
  const std::string token = token_text(e.token_id);
  if (chat()) {
    auto bytes = [](const std::string& s) {
      Json list = Json::array();
      for (unsigned char c : s) list.push_back(static_cast<int>(c));
      return list;
    };
    Json top = Json::array();
    for (const auto& [id, logprob] : e.top_logprobs) {
      const std::string t = token_text(id);
      top.push_back({{"token", t}, {"logprob", logprob}, {"bytes", bytes(t)}});
    }
    Json entry = {{"token", token}, {"logprob", e.logprob}, {"bytes", bytes(token)}, {"top_logprobs", top}};
    out["content"].push_back(entry);
    choice.logprobs["content"].push_back(std::move(entry));
  } else {
    Json top = Json::object();
    for (const auto& [id, logprob] : e.top_logprobs) top[token_text(id)] = logprob;
    for (Json* target : {&out, &choice.logprobs}) {
      (*target)["tokens"].push_back(token);
      (*target)["token_logprobs"].push_back(e.logprob);
      (*target)["top_logprobs"].push_back(top);
      (*target)["text_offset"].push_back(choice.text_offset);
    }
  }
}

Json GenerationJob::chunk(size_t index, const std::string& text, const Json& logprobs, engine::FinishReason finish) const {
  const bool with_logprobs = prepared_.request.want_logprobs && !logprobs.is_null();
  Json choice = {{"index", index}};
  if (chat()) {
    choice["delta"] = finish != engine::FinishReason::None && text.empty() ? Json::object() : Json{{"content", text}};
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = with_logprobs ? logprobs : Json(nullptr);
  choice["finish_reason"] = finish_json(finish);
  return {{"id", id_},
          {"object", chat() ? "chat.completion.chunk" : "text_completion"},
          {"created", created_},
          {"model", prepared_.model_name},
          {"choices", Json::array({choice})}};
}

Json GenerationJob::usage() const {
  return {{"prompt_tokens", prompt_tokens_},
          {"completion_tokens", completion_tokens_},
          {"total_tokens", prompt_tokens_ + completion_tokens_}};
}

std::string GenerationJob::poll() {
  std::string out;
  if (done_) return out;
  const bool stream = prepared_.request.stream;
  const size_t n = static_cast<size_t>(prepared_.request.params.n);
  for (size_t p = 0; p < streams_.size(); ++p) {
    for (engine::OutputEvent& e : streams_[p]->take()) {
      const size_t index = p * n + static_cast<size_t>(e.sample_index);
      if (!e.error.empty()) {
        if (!error_) error_ = ApiError(500, e.error, "", "server_error");
        // A request the engine failed (FinishReason::Error) is counted as such; after an engine
        // failure (no reason) nothing finished.
        if (e.finish_reason == engine::FinishReason::Error && index < choices_.size() && !choices_[index].finished) {
          choices_[index].finished = true;
          choices_[index].finish_reason = engine::FinishReason::Error;
          FinishedSample s;
          s.reason = engine::FinishReason::Error;
          s.output_tokens = e.num_output_tokens;
          metrics_.on_sample_finished(s);
        }
        continue;
      }
      if (index >= choices_.size()) continue;
      Choice& c = choices_[index];
      if (c.finished) continue;
      Json chunk_logprobs = chat() ? Json{{"content", Json::array()}}
                                   : Json{{"tokens", Json::array()}, {"token_logprobs", Json::array()},
                                          {"top_logprobs", Json::array()}, {"text_offset", Json::array()}};
      if (e.token_id >= 0) {
        c.token_ids.push_back(e.token_id);
        add_logprobs(c, e, chunk_logprobs);
      }
      c.text += e.text;
      c.text_offset += static_cast<int64_t>(e.text.size());
      if (stream && chat() && !c.sent_role) {
        Json role = chunk(index, "", nullptr, engine::FinishReason::None);
        role["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
        out += sse(role);
        c.sent_role = true;
      }
      if (e.finished) {
        c.finished = true;
        c.finish_reason = e.finish_reason;
        completion_tokens_ += e.num_output_tokens;
        FinishedSample s;
        s.reason = e.finish_reason;
        s.output_tokens = e.num_output_tokens;
        if (e.first_token >= 0) s.ttft_s = e.first_token - e.arrival;
        if (e.finished_at >= 0) s.e2e_s = e.finished_at - e.arrival;
        if (e.first_scheduled >= 0) s.queue_s = e.first_scheduled - e.arrival;
        if (e.num_output_tokens > 1 && e.first_token >= 0)
          s.tpot_s = (e.finished_at - e.first_token) / static_cast<double>(e.num_output_tokens - 1);
        metrics_.on_sample_finished(s);
        // An abort ends every sample of the request, including those it never forked.
        if (e.finish_reason == engine::FinishReason::Abort)
          for (size_t k = p * n; k < (p + 1) * n; ++k)
            if (!choices_[k].finished) {
              choices_[k].finished = true;
              choices_[k].finish_reason = engine::FinishReason::Abort;
              if (stream && k != index) out += sse(chunk(k, "", nullptr, engine::FinishReason::Abort));
            }
      }
      if (stream) {
        Json j = chunk(index, e.text, chunk_logprobs, c.finished ? c.finish_reason : engine::FinishReason::None);
        if (prepared_.request.return_token_ids)
          j["choices"][0]["token_ids"] = e.token_id >= 0 ? Json::array({e.token_id}) : Json::array();
        out += sse(j);
      }
    }
  }
  bool all_finished = true;
  for (const auto& c : choices_) all_finished = all_finished && c.finished;
  if (all_finished || error_) {
    done_ = true;
    if (stream) {
      if (error_) out += sse(error_->to_json());
      else if (prepared_.request.include_usage)
        out += sse({{"id", id_},
                    {"object", chat() ? "chat.completion.chunk" : "text_completion"},
                    {"created", created_},
                    {"model", prepared_.model_name},
                    {"choices", Json::array()},
                    {"usage", usage()}});
      out += "data: [DONE]\n\n";
    }
  }
  return out;
}

Json GenerationJob::response() const {
  if (error_) return error_->to_json();
  Json choices = Json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    Json choice = {{"index", i}};
    if (chat()) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else choice["text"] = c.text;
    choice["logprobs"] = prepared_.request.want_logprobs ? c.logprobs : Json(nullptr);
    choice["finish_reason"] = finish_json(c.finish_reason);
    if (prepared_.request.return_token_ids) choice["token_ids"] = c.token_ids;
    choices.push_back(std::move(choice));
  }
  return {{"id", id_},
          {"object", chat() ? "chat.completion" : "text_completion"},
          {"created", created_},
          {"model", prepared_.model_name},
          {"choices", choices},
          {"usage", usage()}};
}

}  // namespace iol::server
