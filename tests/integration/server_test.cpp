// iol serve end to end over loopback: outputs equal `iol generate` with the same seed (plain and
// streamed), bad input gets OpenAI error objects with the right 4xx, a client that hangs up
// frees its KV blocks, --max-num-waiting answers 429, SIGTERM drains, and `iol bench --target`
// writes records in the results schema.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <fstream>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "../support/poison_tensor.hpp"
#include "../support/server_process.hpp"
#include "../support/temp_dir.hpp"
#include "iol/bench/json_schema.hpp"
#include "iol/bench/results.hpp"

namespace iol {
namespace {

using Json = nlohmann::json;

std::string run_output(const std::string& args) {
  testing::TempDir dir;
  const int status = std::system((std::string(IOL_BINARY) + " " + args + " >" + dir.str("out") + " 2>" + dir.str("err")).c_str());
  std::ifstream in(dir.str("out")), err(dir.str("err"));
  std::string out(std::istreambuf_iterator<char>(in), {});
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(args + ": " + std::string(std::istreambuf_iterator<char>(err), {}));
  return out;
}

// One shared tiny model and server for the tests that do not need their own flags.
class Server : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    run_output("model create --preset tiny --out " + dir_->str("tiny"));
    std::ofstream(dir_->str("chat.jinja")) << chat_template();
    server_ = new testing::ServerProcess("--model " + dir_->str("tiny") + " --backend cpu --max-model-len 256 "
                                         "--chat-template " + dir_->str("chat.jinja"),
                                         dir_->str("serve.err"));
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  // A template that shows the tools it was given, so their arrival changes the prompt.
  static std::string chat_template() {
    return "{% if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>{% endif %}"
           "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
  }
  static Json post_json(const std::string& path, const Json& body, int expected_status = 200) {
    auto r = server_->post(path, body.dump());
    EXPECT_EQ(r.status, expected_status) << r.body << r.error;
    return Json::parse(r.body);
  }
  static Json generate_json(const std::string& flags) {
    return Json::parse(run_output("generate --model " + dir_->str("tiny") + " --backend cpu --json " + flags));
  }
  static inline testing::TempDir* dir_ = nullptr;
  static inline testing::ServerProcess* server_ = nullptr;
};

TEST_F(Server, CompletionsEqualGenerateWithTheSameSeed) {
  const Json reference = generate_json("--prompt Hello --max-tokens 12 --temperature 0.8 --seed 7 --ignore-eos");
  Json r = post_json("/v1/completions", {{"model", "tiny"}, {"prompt", "Hello"}, {"max_tokens", 12}, {"temperature", 0.8},
                                         {"seed", 7}, {"ignore_eos", true}, {"return_token_ids", true}});
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["choices"][0]["token_ids"], reference["output_ids"]);
  EXPECT_EQ(r["choices"][0]["text"], reference["text"]);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["prompt_tokens"], reference["prompt_ids"].size());
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  EXPECT_EQ(r["usage"]["total_tokens"], reference["prompt_ids"].size() + 12);

  // Streamed: one chunk per token, then the usage chunk, then [DONE].
  auto s = server_->post("/v1/completions", Json{{"prompt", "Hello"}, {"max_tokens", 12}, {"temperature", 0.8}, {"seed", 7},
                                                 {"ignore_eos", true}, {"return_token_ids", true}, {"stream", true},
                                                 {"stream_options", {{"include_usage", true}}}}.dump());
  ASSERT_EQ(s.status, 200);
  ASSERT_GE(s.events.size(), 3u);
  EXPECT_EQ(s.events.back(), "[DONE]");
  std::vector<int> ids;
  for (size_t i = 0; i + 2 < s.events.size(); ++i) {
    Json chunk = Json::parse(s.events[i]);
    for (int id : chunk["choices"][0]["token_ids"]) ids.push_back(id);
    EXPECT_EQ(chunk["choices"][0]["finish_reason"].is_null(), i + 3 < s.events.size()) << s.events[i];
  }
  EXPECT_EQ(Json(ids), reference["output_ids"]);
  Json usage = Json::parse(s.events[s.events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 12);
}

TEST_F(Server, TokenIdPromptsParallelSamplesLogprobsAndStopStrings) {
  // --json prints one object per line, one per sample.
  std::vector<Json> samples;
  {
    const std::string out = run_output("generate --model " + dir_->str("tiny") + " --backend cpu --json --prompt-ids 256,72,105 "
                                       "--max-tokens 6 --temperature 1.0 --seed 3 --n 3 --logprobs 2 --ignore-eos");
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) samples.push_back(Json::parse(line));
  }
  ASSERT_EQ(samples.size(), 3u);
  Json r = post_json("/v1/completions", {{"prompt", {256, 72, 105}}, {"max_tokens", 6}, {"temperature", 1.0}, {"seed", 3},
                                         {"n", 3}, {"logprobs", 2}, {"ignore_eos", true}, {"return_token_ids", true}});
  ASSERT_EQ(r["choices"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r["choices"][i]["index"], i);
    EXPECT_EQ(r["choices"][i]["token_ids"], samples[i]["output_ids"]);
    const Json& lp = r["choices"][i]["logprobs"];
    ASSERT_EQ(lp["token_logprobs"].size(), 6u);
    EXPECT_EQ(lp["top_logprobs"][0].size(), 2u) << lp.dump();  // two distinct top tokens (or fewer if equal text)
    EXPECT_NEAR(lp["token_logprobs"][0].get<double>(), samples[i]["logprobs"][0]["logprob"].get<double>(), 1e-5);
  }
  EXPECT_EQ(r["usage"]["completion_tokens"], 18);
  EXPECT_EQ(r["usage"]["prompt_tokens"], 3);

  // Stop strings: the server cuts where generate cuts (a stop string taken from the reference).
  const Json plain = generate_json("--prompt Hi --max-tokens 24 --temperature 0 --ignore-eos");
  const std::string text = plain["text"];
  ASSERT_GE(text.size(), 8u);
  std::string stop;
  for (size_t at = 4; at < text.size() && stop.empty(); ++at)
    if (static_cast<unsigned char>(text[at]) < 0x80 && text[at] != '\\') stop = text.substr(at, 1);
  if (stop.empty()) GTEST_SKIP() << "the reference output has no ASCII byte to stop on";
  const Json cut = generate_json("--prompt Hi --max-tokens 24 --temperature 0 --ignore-eos --stop '" + stop + "'");
  Json s = post_json("/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true},
                                         {"stop", {stop}}});
  EXPECT_EQ(s["choices"][0]["text"], cut["text"]);
  EXPECT_EQ(s["choices"][0]["finish_reason"], "stop");
  EXPECT_LT(s["choices"][0]["text"].get<std::string>().size(), text.size());
}

TEST_F(Server, ChatRendersToolsThroughTheTemplateAndEqualsGenerate) {
  const Json messages = Json::array({{{"role", "user"}, {"content", "What is the weather?"}}});
  const Json tools = Json::array({{{"type", "function"}, {"function", {{"name", "get_weather"}, {"parameters", Json::object()}}}}});
  std::ofstream(dir_->str("m.json")) << messages.dump();
  std::ofstream(dir_->str("t.json")) << tools.dump();
  const Json ref = generate_json("--messages " + dir_->str("m.json") + " --tools " + dir_->str("t.json") + " --chat-template " +
                                 dir_->str("chat.jinja") + " --max-tokens 10 --temperature 0.7 --seed 11 --ignore-eos");
  Json r = post_json("/v1/chat/completions", {{"messages", messages}, {"tools", tools}, {"max_tokens", 10}, {"temperature", 0.7},
                                              {"seed", 11}, {"ignore_eos", true}, {"return_token_ids", true}});
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r["choices"][0]["token_ids"], ref["output_ids"]);
  EXPECT_EQ(r["usage"]["prompt_tokens"], ref["prompt_ids"].size());
  // Without tools the template renders a shorter prompt: the tools did reach it.
  Json bare = post_json("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 1}});
  EXPECT_EQ(bare["usage"]["prompt_tokens"].get<int>() + std::string("<tools>get_weather;</tools>").size(),
            ref["prompt_ids"].size());
  Json tokenized = post_json("/tokenize", {{"messages", messages}, {"tools", tools}});
  EXPECT_EQ(tokenized["tokens"], ref["prompt_ids"]);
  Json detok = post_json("/detokenize", {{"tokens", {72, 105}}});
  EXPECT_EQ(detok["prompt"], "Hi");
}

TEST_F(Server, BadInputGetsTheRight4xxWithAnOpenAiErrorObject) {
  struct Case {
    std::string path, body;
    int status;
    std::string param;
  };
  const std::vector<Case> cases = {
      {"/v1/completions", "{\"prompt\": \"a\",", 400, ""},
      {"/v1/completions", "[1, 2]", 400, ""},
      {"/v1/completions", R"({"prompt": "a", "max_tokens": "ten"})", 400, "max_tokens"},
      {"/v1/completions", R"({"prompt": "a", "temperature": 7})", 400, "temperature"},
      {"/v1/completions", R"({"prompt": "a", "top_p": 0})", 400, "top_p"},
      {"/v1/completions", R"({"prompt": "a", "n": 0})", 400, "n"},
      {"/v1/completions", R"({"prompt": "a", "logprobs": 21})", 400, "logprobs"},
      {"/v1/completions", R"({"prompt": "a", "stop": 3})", 400, "stop"},
      {"/v1/completions", R"({"prompt": {"x": 1}})", 400, "prompt"},
      {"/v1/completions", R"({"max_tokens": 3})", 400, "prompt"},
      {"/v1/completions", R"({"prompt": [1, 99999]})", 400, "prompt"},
      {"/v1/completions", R"({"prompt": "a", "max_tokens": 300})", 400, "max_tokens"},
      {"/v1/completions", R"({"prompt": "a", "model": "gpt-4"})", 404, "model"},
      {"/v1/chat/completions", R"({"messages": "hi"})", 400, "messages"},
      {"/v1/chat/completions", R"({"messages": [{"content": "no role"}]})", 400, "messages"},
      {"/v1/nothing", "{}", 404, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    auto r = server_->post(c.path, c.body);
    EXPECT_EQ(r.status, c.status) << r.body;
    Json j = Json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    EXPECT_EQ(j["error"]["param"].is_null() ? "" : j["error"]["param"].get<std::string>(), c.param);
  }
  // A prompt longer than the model length names the limit.
  std::string long_prompt(300, 'a');
  auto r = server_->post("/v1/completions", Json{{"prompt", long_prompt}}.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("maximum context length is 256 tokens"), std::string::npos) << r.body;
  // The server still serves after all of that.
  EXPECT_EQ(server_->get("/health").status, 200);
}

// /metrics counts speculative decoding under vLLM's names: n-gram proposals on a prompt that
// repeats itself, accepted ones no more than proposed ones.
TEST(ServerMetrics, SpeculativeDecodingCounters) {
  testing::TempDir dir;
  run_output("model create --preset tiny --out " + dir.str("tiny"));
  testing::ServerProcess server("--model " + dir.str("tiny") + " --backend cpu --speculative-method ngram "
                                "--num-speculative-tokens 3",
                                dir.str("err"));
  EXPECT_EQ(server.metric("vllm:spec_decode_num_drafts_total"), 0);
  std::vector<int> prompt;
  for (int i = 0; i < 6; ++i) prompt.insert(prompt.end(), {256, 11, 12, 13, 14});
  auto r = server.post("/v1/completions", Json{{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const double drafts = server.metric("vllm:spec_decode_num_drafts_total");
  const double proposed = server.metric("vllm:spec_decode_num_draft_tokens_total");
  const double accepted = server.metric("vllm:spec_decode_num_accepted_tokens_total");
  EXPECT_GT(drafts, 0);
  EXPECT_GE(proposed, drafts);
  EXPECT_LE(proposed, 3 * drafts);
  EXPECT_LE(accepted, proposed);
}

TEST(ServerProtection, ApiKeyBodyLimitAnd429) {
  testing::TempDir dir;
  run_output("model create --preset tiny --out " + dir.str("tiny"));
  testing::ServerProcess server("--model " + dir.str("tiny") + " --backend cpu --api-key sekrit --max-body-bytes 2000 "
                                "--max-num-waiting 2 --max-num-seqs 2",
                                dir.str("err"));
  const std::string ok_body = R"({"prompt": "Hi", "max_tokens": 2})";
  EXPECT_EQ(server.post("/v1/completions", ok_body).status, 401);
  EXPECT_EQ(server.post("/v1/completions", ok_body, "wrong").status, 401);
  auto good = server.post("/v1/completions", ok_body, "sekrit");
  EXPECT_EQ(good.status, 200) << good.body;
  auto unauthorized = server.post("/v1/completions", ok_body, "sekrit-but-longer");
  EXPECT_EQ(unauthorized.status, 401);
  EXPECT_EQ(Json::parse(unauthorized.body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(server.get("/health").status, 200);  // health and metrics need no key
  auto big = server.post("/v1/completions", Json{{"prompt", std::string(5000, 'a')}}.dump(), "sekrit");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("exceeds the limit of 2000 bytes"), std::string::npos) << big.body;

  // 40 long requests at once with 2 running and at most 2 waiting: the rest are told to retry.
  bench::HttpLoadClient client(server.target(), "sekrit");
  std::vector<bench::HttpCall> calls(40);
  for (auto& c : calls) {
    c.path = "/v1/completions";
    c.body = R"({"prompt": "Hi", "max_tokens": 64, "ignore_eos": true})";
  }
  auto results = client.run(calls, 40);
  int ok = 0, limited = 0;
  for (const auto& r : results) {
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      EXPECT_EQ(r.retry_after, "1");
      EXPECT_EQ(Json::parse(r.body)["error"]["type"], "rate_limit_error");
    }
  }
  EXPECT_EQ(ok + limited, 40);
  EXPECT_GE(ok, 2);
  EXPECT_GE(limited, 1);
}

TEST(ServerProtection, ClientThatHangsUpAbortsItsRequestAndFreesItsBlocks) {
  testing::TempDir dir;
  run_output("model create --preset tiny --out " + dir.str("tiny"));
  testing::ServerProcess server("--model " + dir.str("tiny") + " --backend cpu --no-prefix-caching", dir.str("err"));
  bench::HttpLoadClient client(server.target(), "");
  std::vector<bench::HttpCall> calls(8);
  for (size_t i = 0; i < calls.size(); ++i) {
    calls[i].path = "/v1/completions";
    calls[i].body = R"({"prompt": "Hello there", "max_tokens": 1500, "ignore_eos": true, "stream": true})";
    calls[i].hang_up_after_events = static_cast<int64_t>(i % 4);  // 0: before any byte came back
  }
  auto results = client.run(calls, 8);
  for (const auto& r : results) EXPECT_TRUE(r.hung_up);
  // Within a few steps the engine has aborted them all: nothing running, no block held.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         (server.metric("vllm:num_requests_running") != 0 || server.metric("iol:kv_cache_used_blocks") != 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(server.metric("vllm:num_requests_running"), 0);
  EXPECT_EQ(server.metric("vllm:num_requests_waiting"), 0);
  EXPECT_EQ(server.metric("iol:kv_cache_used_blocks"), 0);
  const std::string metrics = server.get("/metrics").body;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(metrics, m, std::regex("vllm:request_success_total\\{[^}]*finished_reason=\"abort\"\\} ([0-9]+)")));
  EXPECT_EQ(std::stoi(m[1]), 8);
  // They were aborted, not run to the end: far fewer than 8 × 1500 tokens were generated.
  EXPECT_LT(server.metric("vllm:generation_tokens_total"), 8 * 1500 / 2);
}

// A request the model fails (NaN logits: token 7's embedding is poisoned) gets a 500 with the
// engine's reason, plain or streamed; the other requests of the same call are aborted and free
// their blocks; the server goes on serving.
TEST(ServerProtection, RequestWithNonFiniteLogitsGets500AndTheServerServesOn) {
  testing::TempDir dir;
  run_output("model create --preset tiny --dtype f32 --out " + dir.str("m"));
  testing::poison_tensor(dir.str("m/model.safetensors"), "model.embed_tokens.weight", 7, 1);
  testing::ServerProcess server("--model " + dir.str("m") + " --backend cpu", dir.str("err"));
  const Json poisoned = {{"prompt", Json::array({256, 7})}, {"max_tokens", 4}, {"temperature", 0}, {"ignore_eos", true}};
  auto r = server.post("/v1/completions", poisoned.dump());
  EXPECT_EQ(r.status, 500) << r.body;
  Json body = Json::parse(r.body, nullptr, false);
  EXPECT_NE(body["error"]["message"].get<std::string>().find("non-finite logits"), std::string::npos) << r.body;
  EXPECT_EQ(body["error"]["type"], "server_error");

  Json streamed = poisoned;
  streamed["stream"] = true;
  r = server.post("/v1/completions", streamed.dump());
  EXPECT_EQ(r.status, 200);
  ASSERT_GE(r.events.size(), 2u) << r.body;
  EXPECT_EQ(r.events.back(), "[DONE]");
  Json last = Json::parse(r.events[r.events.size() - 2], nullptr, false);
  EXPECT_NE(last["error"]["message"].get<std::string>().find("non-finite logits"), std::string::npos) << r.body;

  // Two prompts in one call, one poisoned: the call fails and the clean one is aborted.
  Json both = {{"prompt", Json::array({Json::array({256, 9}), Json::array({256, 7})})}, {"max_tokens", 200},
               {"temperature", 0}, {"ignore_eos", true}};
  r = server.post("/v1/completions", both.dump());
  EXPECT_EQ(r.status, 500) << r.body;

  Json clean = {{"prompt", Json::array({256, 9})}, {"max_tokens", 4}, {"temperature", 0}, {"ignore_eos", true},
                {"return_token_ids", true}};
  r = server.post("/v1/completions", clean.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body)["choices"][0]["token_ids"].size(), 4u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         (server.metric("vllm:num_requests_running") != 0 || server.metric("iol:kv_cache_used_blocks") != 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(server.metric("vllm:num_requests_running"), 0);
  EXPECT_EQ(server.metric("iol:kv_cache_used_blocks"), 0);
  const std::string metrics = server.get("/metrics").body;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(metrics, m, std::regex("vllm:request_success_total\\{[^}]*finished_reason=\"error\"\\} ([0-9]+)")));
  EXPECT_EQ(std::stoi(m[1]), 3);
  EXPECT_EQ(server.get("/health").status, 200);
}

TEST(ServerProtection, SigtermLetsInFlightRequestsFinishThenExits) {
  testing::TempDir dir;
  run_output("model create --preset tiny --out " + dir.str("tiny"));
  // The timeout only bounds a failure: the drain ends as soon as the streams do (200 tokens took
  // over 30 s under ASan on the shared 2-core machine at load 8).
  testing::ServerProcess server("--model " + dir.str("tiny") + " --backend cpu --shutdown-timeout 240", dir.str("err"));
  bench::HttpLoadClient client(server.target(), "");
  std::vector<bench::HttpCall> calls(4);
  for (auto& c : calls) {
    c.path = "/v1/completions";
    c.body = R"({"prompt": "Hello", "max_tokens": 200, "ignore_eos": true, "stream": true})";
  }
  std::vector<bench::HttpCallResult> results;
  std::thread clients([&] { results = client.run(calls, 4); });
  // SIGTERM once every stream has started.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline && server.metric("vllm:num_requests_running") < 4)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const pid_t pid = server.pid();
  EXPECT_EQ(server.terminate(270), 0) << server.read_stderr();
  clients.join();
  for (const auto& r : results) {
    ASSERT_EQ(r.status, 200) << r.error;
    ASSERT_GE(r.events.size(), 2u);
    EXPECT_EQ(r.events.back(), "[DONE]");
    EXPECT_EQ(Json::parse(r.events[r.events.size() - 2])["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(r.events.size(), 201u);
  }
  EXPECT_NE(kill(pid, 0), 0);  // gone
}

TEST(ServerProtection, ShutdownTimeoutAbortsWhatIsStillRunning) {
  testing::TempDir dir;
  run_output("model create --preset tiny --out " + dir.str("tiny"));
  testing::ServerProcess server("--model " + dir.str("tiny") + " --backend cpu --shutdown-timeout 0.2", dir.str("err"));
  bench::HttpLoadClient client(server.target(), "");
  std::vector<bench::HttpCall> calls(2);
  for (auto& c : calls) {
    c.path = "/v1/completions";
    c.body = R"({"prompt": "Hello", "max_tokens": 1900, "ignore_eos": true, "stream": true})";
  }
  std::vector<bench::HttpCallResult> results;
  std::thread clients([&] { results = client.run(calls, 2); });
  while (server.metric("vllm:num_requests_running") < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server.terminate(30), 0);
  clients.join();
  for (const auto& r : results) {
    ASSERT_EQ(r.status, 200) << r.error;
    ASSERT_GE(r.events.size(), 2u);
    EXPECT_EQ(Json::parse(r.events[r.events.size() - 2])["choices"][0]["finish_reason"], "abort");
    EXPECT_LT(r.events.size(), 1900u);
  }
}

TEST_F(Server, BenchTargetWritesRecordsInTheResultsSchema) {
  testing::TempDir out;
  const std::string results = out.str("r.jsonl");
  run_output("bench --target " + server_->url() + " --model " + dir_->str("tiny") + " --quiet --num-requests 8 "
             "--warmup-requests 1 --input-len 16 --output-len 8 --arrival closed --concurrency 4 --out " + results);
  run_output("bench --target " + server_->url() + "/v1 --model " + dir_->str("tiny") + " --quiet --num-requests 4 "
             "--input-len 8 --output-len 4 --endpoint chat --arrival poisson --request-rate 50 --out " + results);
  auto records = bench::read_jsonl(results);
  ASSERT_EQ(records.size(), 2u);
  std::ifstream in(std::string(IOL_SOURCE_DIR) + "/bench/schema/results.schema.json");
  const Json schema = Json::parse(in);
  for (const auto& record : records) {
    EXPECT_EQ(bench::validate_json_schema(schema, record), "") << record.dump().substr(0, 400);
    EXPECT_EQ(record["engine"]["name"], "iol");
    EXPECT_EQ(record["engine"]["runner"], "http");
    EXPECT_EQ(record["engine"]["backend"], "remote");
    EXPECT_EQ(record["metrics"]["num_failed"], 0);
    EXPECT_TRUE(record["target"]["kv_peak_usage"].is_number()) << record["target"].dump();
  }
  EXPECT_EQ(records[0]["metrics"]["num_completed"], 8);
  EXPECT_EQ(records[0]["metrics"]["total_output_tokens"], 64);
  EXPECT_EQ(records[0]["metrics"]["total_input_tokens"], 128);
  EXPECT_EQ(records[1]["metrics"]["total_output_tokens"], 16);
  // Bad target: one line, exit 1.
  testing::TempDir d;
  int status = std::system((std::string(IOL_BINARY) + " bench --target http://127.0.0.1:1 --preset tiny --quiet --out " +
                            d.str("x.jsonl") + " 2>" + d.str("err")).c_str());
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream err(d.str("err"));
  std::string line(std::istreambuf_iterator<char>(err), {});
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
  EXPECT_NE(line.find("iol: error: http://127.0.0.1:1/v1/models"), std::string::npos) << line;
}

}  // namespace
}  // namespace iol
