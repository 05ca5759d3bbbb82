// Acceptance 3 of the server, bounded for CI (label load; see docs/testing.md for its time): 2,000 streams
// open at once, then 10,000 requests (500 in flight) of which 20% hang up at a random point.
// Every completed stream is well formed and equals its seeded reference from `iol generate`;
// no request is lost (each one the server admitted finished as length or abort); at the end no
// sequence runs or waits and no KV block is held (read from /metrics); the server's RSS is flat.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "../support/server_process.hpp"
#include "../support/temp_dir.hpp"

namespace iol {
namespace {

using Json = nlohmann::json;

constexpr int kPrompts = 32, kPromptLen = 8, kMaxTokens = 8;

std::string run(const std::string& command) {
  testing::TempDir dir;
  const int status = std::system((command + " >" + dir.str("out") + " 2>" + dir.str("err")).c_str());
  std::ifstream in(dir.str("out")), err(dir.str("err"));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(command + ": " + std::string(std::istreambuf_iterator<char>(err), {}));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int64_t labelled(const std::string& metrics, const std::string& reason) {
  std::smatch m;
  if (!std::regex_search(metrics, m, std::regex("vllm:request_success_total\\{[^}]*finished_reason=\"" + reason + "\"\\} ([0-9]+)")))
    return -1;
  return std::stoll(m[1]);
}

// Checks one stream: chunk JSON, one token each, finish on the last, usage, [DONE]; returns its ids.
std::vector<int> stream_ids(const bench::HttpCallResult& r, std::string& problem) {
  std::vector<int> ids;
  if (r.status != 200) {
    problem = "status " + std::to_string(r.status) + " " + r.error;
    return ids;
  }
  if (r.events.size() != kMaxTokens + 2 || r.events.back() != "[DONE]") {
    problem = "expected " + std::to_string(kMaxTokens + 2) + " events ending in [DONE], got " + std::to_string(r.events.size());
    return ids;
  }
  for (int i = 0; i < kMaxTokens; ++i) {
    Json chunk = Json::parse(r.events[static_cast<size_t>(i)], nullptr, false);
    if (chunk.is_discarded() || chunk["object"] != "text_completion" || chunk["choices"].size() != 1 ||
        chunk["choices"][0]["token_ids"].size() != 1 ||
        chunk["choices"][0]["finish_reason"].is_null() != (i + 1 < kMaxTokens)) {
      problem = "malformed chunk " + r.events[static_cast<size_t>(i)];
      return ids;
    }
    ids.push_back(chunk["choices"][0]["token_ids"][0]);
  }
  Json usage = Json::parse(r.events[kMaxTokens], nullptr, false);
  if (usage.is_discarded() || usage["usage"]["completion_tokens"] != kMaxTokens || usage["usage"]["prompt_tokens"] != kPromptLen)
    problem = "bad usage chunk " + r.events[kMaxTokens];
  return ids;
}

// CPU seconds (user + system) of the process's threads, by thread name (/proc/PID/task/*/stat).
std::map<std::string, double> cpu_seconds_by_thread(pid_t pid) {
  std::map<std::string, double> out;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(task)) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream fields(line.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i)
      if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
    out[line.substr(open + 1, close - open - 1)] += ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return out;
}

TEST(ServerLoad, TwoThousandStreamsThenTenThousandRequestsWithHangUps) {
  testing::TempDir dir;
  // A 0.1 M-parameter model (the tiny preset's shape cut to one narrow layer): the engine's
  // compute stays a few seconds, so the run measures the HTTP path, not the CPU backend.
  run(std::string(IOL_BINARY) + " model create --preset tiny --out " + dir.str("tiny-preset"));
  {
    std::ifstream in(dir.str("tiny-preset/config.json"));
    Json config = Json::parse(in);
    config.update(Json{{"hidden_size", 64}, {"intermediate_size", 128}, {"num_hidden_layers", 1},
                       {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"head_dim", 32}});
    std::ofstream(dir.str("micro.json")) << config.dump();
  }
  run(std::string(IOL_BINARY) + " model create --config " + dir.str("micro.json") + " --out " + dir.str("tiny"));
  // Seeded references: the prompts as one in-flight batch, one output line per prompt.
  std::vector<std::vector<int>> prompts;
  std::mt19937 rng(5);
  {
    std::ofstream file(dir.str("prompts.txt"));
    for (int p = 0; p < kPrompts; ++p) {
      std::vector<int> ids;
      for (int t = 0; t < kPromptLen; ++t) ids.push_back(static_cast<int>(rng() % 250) + 1);
      for (int t = 0; t < kPromptLen; ++t) file << (t ? "," : "") << ids[static_cast<size_t>(t)];
      file << "\n";
      prompts.push_back(ids);
    }
  }
  std::vector<std::vector<int>> reference;
  {
    std::istringstream lines(run(std::string(IOL_BINARY) + " generate --model " + dir.str("tiny") + " --backend cpu --prompts-file " +
                                 dir.str("prompts.txt") + " --max-tokens 8 --temperature 0.9 --seed 21 --ignore-eos --output-ids"));
    for (std::string line; std::getline(lines, line);) {
      std::vector<int> ids;
      std::stringstream fields(line);
      for (std::string f; std::getline(fields, f, ',');) ids.push_back(std::stoi(f));
      reference.push_back(ids);
    }
  }
  ASSERT_EQ(reference.size(), static_cast<size_t>(kPrompts));

  // A 2 MiB KV pool (512 blocks): the burst touches all of it (the prefix cache hands out freed
  // blocks least recently used first, so a large pool would keep growing RSS by first touch).
  testing::ServerProcess server("--model " + dir.str("tiny") + " --backend cpu --max-model-len 64 --max-num-seqs 256 "
                                "--max-num-batched-tokens 2048 --http-threads 2 --kv-cache-memory 2097152",
                                dir.str("serve.err"));
  auto call_for = [&](size_t i) {
    bench::HttpCall call;
    call.path = "/v1/completions";
    call.body = Json{{"prompt", prompts[i % kPrompts]}, {"max_tokens", kMaxTokens}, {"temperature", 0.9}, {"seed", 21},
                     {"ignore_eos", true}, {"stream", true}, {"stream_options", {{"include_usage", true}}},
                     {"return_token_ids", true}}.dump();
    return call;
  };
  bench::HttpLoadClient client(server.target(), "", 300);

  // 1. 2,000 streams open at once.
  std::vector<bench::HttpCall> burst;
  for (size_t i = 0; i < 2000; ++i) burst.push_back(call_for(i));
  const auto t0 = std::chrono::steady_clock::now();
  auto results = client.run(burst, 2000);
  const double burst_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int bad = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    std::string problem;
    auto ids = stream_ids(results[i], problem);
    if (problem.empty() && ids != reference[i % kPrompts]) problem = "tokens differ from the reference";
    if (!problem.empty() && bad++ < 5) ADD_FAILURE() << "burst stream " << i << ": " << problem;
  }
  EXPECT_EQ(bad, 0);
  const int64_t rss_after_burst = server.rss_kib();

  // 2. 10,000 requests, 500 in flight, 20% hanging up after 0..kMaxTokens events.
  std::vector<bench::HttpCall> calls;
  std::vector<bool> hangs;
  for (size_t i = 0; i < 10000; ++i) {
    calls.push_back(call_for(i));
    const bool hang = rng() % 5 == 0;
    hangs.push_back(hang);
    if (hang) calls.back().hang_up_after_events = static_cast<int64_t>(rng() % kMaxTokens);
  }
  const auto t1 = std::chrono::steady_clock::now();
  results = client.run(calls, 500);
  const double run_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  int completed = 0, hung_up = 0;
  bad = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (hangs[i]) {
      EXPECT_TRUE(results[i].hung_up);
      ++hung_up;
      continue;
    }
    std::string problem;
    auto ids = stream_ids(results[i], problem);
    if (problem.empty() && ids != reference[i % kPrompts]) problem = "tokens differ from the reference";
    if (!problem.empty() && bad++ < 5) ADD_FAILURE() << "request " << i << ": " << problem;
    if (problem.empty()) ++completed;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(completed + hung_up, 10000);
  EXPECT_GT(hung_up, 1500);

  // 3. Nothing left behind: every admitted request finished (length) or was aborted.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         (server.metric("vllm:num_requests_running") != 0 || server.metric("iol:kv_cache_used_blocks") != 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::string metrics = server.get("/metrics").body;
  EXPECT_EQ(bench::prometheus_value(metrics, "vllm:num_requests_running").value_or(-1), 0);
  EXPECT_EQ(bench::prometheus_value(metrics, "vllm:num_requests_waiting").value_or(-1), 0);
  EXPECT_EQ(bench::prometheus_value(metrics, "iol:kv_cache_used_blocks").value_or(-1), 0);
  const int64_t length = labelled(metrics, "length"), aborted = labelled(metrics, "abort");
  EXPECT_EQ(length + aborted, 12000) << "length " << length << ", abort " << aborted;
  EXPECT_GE(length, 2000 + completed);
  EXPECT_GT(aborted, 0);
  // Flat memory: the second, five times longer phase grows the server by less than 32 MiB.
  const int64_t rss_end = server.rss_kib();
  EXPECT_LT(rss_end - rss_after_burst, 32 * 1024) << "RSS " << rss_after_burst << " KiB after the burst, " << rss_end << " KiB at the end";
  std::cout << "[ load ] 2000 concurrent streams in " << burst_s << " s; 10000 requests (" << hung_up << " hung up) in "
            << run_s << " s; server RSS " << rss_after_burst / 1024 << " → " << rss_end / 1024 << " MiB; aborted " << aborted
            << std::endl;
  std::cout << "[ load ] server CPU seconds by thread:";
  for (const auto& [name, seconds] : cpu_seconds_by_thread(server.pid())) std::cout << " " << name << " " << seconds;
  std::cout << std::endl;
  EXPECT_EQ(server.terminate(30), 0);
}

}  // namespace
}  // namespace iol
