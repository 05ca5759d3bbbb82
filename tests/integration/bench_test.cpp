// iol bench and iol report end to end: every emitted record validates against the JSON Schema,
// sweeps give one record per point, traces are complete, and errors are one line.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../support/temp_dir.hpp"
#include "iol/bench/json_schema.hpp"
#include "iol/bench/results.hpp"

namespace iol {
namespace {

int run(const std::string& args, std::string* err = nullptr) {
  testing::TempDir dir;
  int status = std::system((std::string(IOL_BINARY) + " " + args + " 2>" + dir.str("err") + " >/dev/null").c_str());
  if (err) {
    std::ifstream in(dir.str("err"));
    *err = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

nlohmann::json schema() {
  std::ifstream in(std::string(IOL_SOURCE_DIR) + "/bench/schema/results.schema.json");
  return nlohmann::json::parse(in);
}

// Speculative decoding in results records (docs/speculative.md): the configuration in
// engine.speculative, the counters in target.speculative, both valid against the schema.
TEST(Bench, SpeculativeRecordsCarryTheCountersAndValidate) {
  testing::TempDir dir;
  const std::string out = dir.str("spec.jsonl");
  const std::string model = std::string(IOL_FIXTURES_DIR) + "/reference_models/";
  const std::string base = "bench --model " + model + "target --quiet --out " + out +
                           " --input-len 24 --output-len 16 --num-requests 4 --threads 1";
  ASSERT_EQ(run(base + " --speculative-model " + model + "draft --num-speculative-tokens 3"), 0);
  ASSERT_EQ(run(base + " --speculative-method ngram"), 0);
  ASSERT_EQ(run(base), 0);
  const auto records = bench::read_jsonl(out);
  ASSERT_EQ(records.size(), 3u);
  const auto s = schema();
  for (const auto& record : records) EXPECT_EQ(bench::validate_json_schema(s, record), "") << record.dump().substr(0, 300);
  EXPECT_EQ(records[0]["engine"]["levers"]["speculative_decoding"], "draft");
  EXPECT_EQ(records[0]["engine"]["speculative"]["num_speculative_tokens"], 3);
  const auto& spec = records[0]["target"]["speculative"];
  EXPECT_GT(spec["num_proposed_tokens"].get<int64_t>(), 0);
  EXPECT_GT(spec["num_accepted_tokens"].get<int64_t>(), 0);
  EXPECT_GT(spec["draft_time_share"].get<double>(), 0.0);
  EXPECT_EQ(records[1]["engine"]["levers"]["speculative_decoding"], "ngram");
  EXPECT_EQ(records[1]["engine"]["speculative"]["num_speculative_tokens"], 4);  // the default k
  EXPECT_EQ(records[2]["engine"]["levers"]["speculative_decoding"], "none");
  EXPECT_TRUE(records[2]["target"]["speculative"].is_null());
  EXPECT_TRUE(records[2]["engine"]["speculative"].is_null());
}

TEST(Bench, EveryRecordValidatesAgainstTheSchema) {
  testing::TempDir dir;
  const std::string out = dir.str("r/results.jsonl");
  const std::string base = "bench --preset tiny --quiet --out " + out + " --input-len 12 --output-len 6 --num-requests 6 --warmup-requests 1";
  ASSERT_EQ(run(base + " --arrival offline"), 0);
  ASSERT_EQ(run(base + " --arrival closed --concurrency 1,3 --slo ttft_ms=1000,tpot_ms=100"), 0);
  ASSERT_EQ(run(base + " --arrival poisson --request-rate 50 --burstiness 0.5 --batching static --kv-layout contiguous "
                       "--max-model-len 64 --no-prefix-caching --no-chunked-prefill"), 0);
  ASSERT_EQ(run("bench --scenario " + std::string(IOL_SOURCE_DIR) + "/bench/scenarios/default-cpu.yaml --preset tiny --quiet "
                "--num-requests 4 --out " + out), 0);
  auto records = bench::read_jsonl(out);
  ASSERT_EQ(records.size(), 1u + 2u + 1u + 2u);
  const auto s = schema();
  for (const auto& record : records) {
    EXPECT_EQ(bench::validate_json_schema(s, record), "") << record.dump().substr(0, 200);
    EXPECT_EQ(record["metrics"]["num_warmup"].get<int>(), record["workload"]["warmup_requests"].get<int>());
  }
  EXPECT_EQ(records[0]["metrics"]["num_completed"], 6);
  EXPECT_EQ(records[0]["metrics"]["total_output_tokens"], 36);
  EXPECT_EQ(records[2]["workload"]["sweep"]["concurrency"], 3);
  EXPECT_TRUE(records[2]["metrics"]["goodput"].is_number());
  EXPECT_EQ(records[3]["engine"]["levers"]["batching"], "static");
  EXPECT_EQ(records[3]["engine"]["levers"]["kv_layout"], "contiguous");
  // Telemetry: without NVML (no driver, no GPU) every record says why and carries no numbers;
  // with it, the samples and their summaries are there.
  const std::vector<std::string> telemetry_numbers = {"energy_counter_j", "energy_integrated_j", "mean_power_w",
      "peak_power_w", "peak_memory_used_bytes", "mean_gpu_utilization", "mean_memory_utilization", "mean_sm_clock_mhz",
      "max_temperature_c"};
  for (const auto& record : records) {
    const auto& telemetry = record["telemetry"];
    SCOPED_TRACE(telemetry.dump());
    if (!telemetry["available"].get<bool>()) {
      ASSERT_TRUE(telemetry["reason"].is_string());
      EXPECT_NE(telemetry["reason"].get<std::string>(), "");
      EXPECT_EQ(telemetry["num_samples"], 0);
      for (const auto& key : telemetry_numbers) EXPECT_TRUE(telemetry[key].is_null()) << key;
    } else {
      EXPECT_TRUE(telemetry["reason"].is_null());
      EXPECT_GE(telemetry["num_samples"].get<int>(), 1);
      EXPECT_GT(telemetry["duration_s"].get<double>(), 0.0);
      for (const auto& key : {"mean_power_w", "peak_power_w", "peak_memory_used_bytes"})
        EXPECT_TRUE(telemetry[key].is_number()) << key;
    }
  }
  // The traces file holds every request of every run, warm-up included, with one time per token.
  std::ifstream traces(dir.str("r/results.requests.jsonl"));
  std::string line;
  int lines = 0;
  while (std::getline(traces, line)) {
    auto t = nlohmann::json::parse(line);
    EXPECT_EQ(t["token_times"].size(), t["output_tokens"].get<size_t>());
    ++lines;
  }
  EXPECT_EQ(lines, 7 + 2 * 7 + 7 + 2 * 6);

  ASSERT_EQ(run("report " + out + " --out " + dir.str("report.md")), 0);
  std::ifstream report(dir.str("report.md"));
  std::string md(std::istreambuf_iterator<char>(report), {});
  EXPECT_NE(md.find("## default — concurrency=3"), std::string::npos);
  EXPECT_NE(md.find("| output tok/s |"), std::string::npos);
  EXPECT_NE(md.find("## Environment"), std::string::npos);
  if (!records[3]["telemetry"]["available"].get<bool>())
    EXPECT_NE(md.find("| " + records[3]["run_id"].get<std::string>() + " | not available: " +
                      records[3]["telemetry"]["reason"].get<std::string>() + " |"), std::string::npos) << md;
}

// The line of `md` that starts with the row of `run_id` (empty when there is none).
std::string report_row(const std::string& md, const std::string& run_id) {
  size_t at = md.find("\n| " + run_id + " ");
  if (at == std::string::npos) return "";
  return md.substr(at + 1, md.find('\n', at + 1) - at - 1);
}

TEST(Bench, ReportRatiosAreAgainstTheChosenBaseline) {
  testing::TempDir dir;
  const std::string out = dir.str("r.jsonl");
  // Two runs of one workload (one table), then the second chosen as the baseline.
  const std::string base = "bench --preset tiny --quiet --out " + out + " --input-len 12 --output-len 6 --num-requests 6";
  ASSERT_EQ(run(base), 0);
  ASSERT_EQ(run(base + " --batching static"), 0);
  auto records = bench::read_jsonl(out);
  ASSERT_EQ(records.size(), 2u);
  const std::string first = records[0]["run_id"], second = records[1]["run_id"];
  const double first_throughput = records[0]["metrics"]["output_throughput"], second_throughput = records[1]["metrics"]["output_throughput"];
  auto report = [&](const std::string& flags) {
    EXPECT_EQ(run("report " + out + flags + " --out " + dir.str("report.md")), 0);
    std::ifstream in(dir.str("report.md"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // By default the first run of a table is its baseline.
  std::string md = report("");
  EXPECT_NE(report_row(md, first).find(first + " ★ |"), std::string::npos) << md;
  EXPECT_NE(report_row(md, first).find("| 1.00× |"), std::string::npos) << md;
  EXPECT_NE(report_row(md, second).find(fmt::format("| {:.2f}× |", second_throughput / first_throughput)), std::string::npos) << md;
  md = report(" --baseline " + second);
  const std::string baseline_row = report_row(md, second), other_row = report_row(md, first);
  EXPECT_NE(baseline_row.find(second + " ★ |"), std::string::npos) << md;
  EXPECT_NE(baseline_row.find("| 1.00× |"), std::string::npos) << md;
  EXPECT_EQ(other_row.find("★"), std::string::npos) << md;
  EXPECT_NE(other_row.find(fmt::format("| {:.2f}× |", first_throughput / second_throughput)), std::string::npos) << md;
}

TEST(Bench, TextAndDatasetPromptsGoThroughTheTokenizer) {
  testing::TempDir dir;
  std::ofstream(dir.str("sg.json")) << R"([
    {"conversations": [{"from": "human", "value": "What is a KV cache?"}, {"from": "gpt", "value": "Keys and values."}]},
    {"conversations": [{"from": "human", "value": "Only one turn"}]}])";
  std::ofstream(dir.str("ds.jsonl")) << "{\"prompt\": \"Hello there\", \"output_len\": 5}\n";
  const std::string out = dir.str("r.jsonl");
  ASSERT_EQ(run("bench --preset tiny --quiet --prompts sharegpt --dataset " + dir.str("sg.json") + " --num-requests 2 --out " + out), 0);
  ASSERT_EQ(run("bench --preset tiny --quiet --prompts jsonl --dataset " + dir.str("ds.jsonl") + " --num-requests 2 --out " + out), 0);
  ASSERT_EQ(run("bench --preset tiny --quiet --prompts text --input-len 24 --output-len 3 --num-requests 2 --out " + out), 0);
  const auto s = schema();
  for (const auto& record : bench::read_jsonl(out)) EXPECT_EQ(bench::validate_json_schema(s, record), "");
  // The tiny model's tokenizer is byte-level with BOS: a prompt is its bytes + 1 tokens; a
  // ShareGPT request generates as many tokens as the reply has; jsonl gives output_len.
  std::vector<std::pair<int, int>> lengths;
  std::ifstream traces(dir.str("r.requests.jsonl"));
  for (std::string line; std::getline(traces, line);) {
    auto t = nlohmann::json::parse(line);
    lengths.emplace_back(t["input_tokens"].get<int>(), t["output_tokens"].get<int>());
  }
  ASSERT_EQ(lengths.size(), 6u);
  EXPECT_EQ(lengths[0], std::make_pair(20, 16));  // "What is a KV cache?" / "Keys and values."
  EXPECT_EQ(lengths[2], std::make_pair(12, 5));   // "Hello there", output_len 5
  EXPECT_EQ(lengths[4], std::make_pair(24, 3));   // text prompts trimmed to input_len
}

TEST(Bench, BadInputsGiveOneLineErrors) {
  testing::TempDir dir;
  std::string err;
  std::ofstream(dir.str("bad.yaml")) << "arrival: closed\n";
  EXPECT_EQ(run("bench --preset tiny --scenario " + dir.str("bad.yaml"), &err), 1);
  EXPECT_EQ(err, "iol: error: " + dir.str("bad.yaml") + ": arrival closed needs 'concurrency'\n");
  EXPECT_EQ(run("bench --preset tiny --prompts jsonl --dataset /nonexistent/ds.jsonl", &err), 1);
  EXPECT_EQ(err, "iol: error: /nonexistent/ds.jsonl: cannot open: No such file or directory\n");
  std::ofstream(dir.str("bad.jsonl")) << "{\"prompt\": \"ok\"}\n{\"text\": 1}\n";
  EXPECT_EQ(run("bench --preset tiny --prompts jsonl --dataset " + dir.str("bad.jsonl"), &err), 1);
  EXPECT_EQ(err, "iol: error: " + dir.str("bad.jsonl") + ":2: expected {\"prompt\": string, \"output_len\": integer}\n");
  EXPECT_EQ(run("bench --preset tiny --slo ttft=3", &err), 2);
  EXPECT_EQ(err, "iol: error: --slo: 'ttft=3' is not KEY=MS with KEY ttft_ms, tpot_ms or e2e_ms and MS > 0 (see --help)\n");
  std::ofstream(dir.str("r.jsonl")) << "{\"run_id\": \"a\"}\nnot json\n";
  EXPECT_EQ(run("report " + dir.str("r.jsonl"), &err), 1);
  EXPECT_EQ(err, "iol: error: " + dir.str("r.jsonl") + ":2: not a JSON object\n");
  EXPECT_EQ(run("bench --preset tiny --quiet --num-requests 1 --input-len 4 --output-len 2 --out " + dir.str("ok.jsonl")), 0);
  EXPECT_EQ(run("report " + dir.str("ok.jsonl") + " --baseline nope", &err), 1);
  EXPECT_EQ(err, "iol: error: report: baseline run 'nope' is not in the results\n");
}

std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(Bench, ExportRequestsWritesTheExactRequestListAndRunsNothing) {
  testing::TempDir dir;
  const std::string args = "bench --preset tiny --quiet --num-requests 5 --warmup-requests 1 --input-len 7 "
                           "--output-len 3 --arrival poisson --request-rate 4,8 --seed 3 --export-requests ";
  // Run from the scratch directory: the default --out (reports/results.jsonl) must not appear.
  const int status = std::system(("cd " + dir.str() + " && " + IOL_BINARY + " " + args + dir.str("a/requests.jsonl")).c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(run(args + dir.str("b.jsonl")), 0);
  EXPECT_EQ(read_bytes(dir.str("a/requests.jsonl")), read_bytes(dir.str("b.jsonl"))) << "not deterministic";
  EXPECT_FALSE(std::filesystem::exists(dir.str("reports"))) << "an export must not run the benchmark";
  // --out does not apply to an export: an error, not silently ignored.
  std::string err;
  EXPECT_EQ(run(args + dir.str("c.jsonl") + " --out " + dir.str("results.jsonl"), &err), 2);
  EXPECT_NE(err.find("--out does not apply"), std::string::npos) << err;
  EXPECT_FALSE(std::ifstream(dir.str("results.jsonl")).good());
  const auto lines = read_lines(dir.str("a/requests.jsonl"));
  ASSERT_EQ(lines.size(), 1u + 6u);
  const nlohmann::json& header = lines[0];
  EXPECT_EQ(header["kind"], "workload");
  EXPECT_EQ(header["vocab_size"], 512);
  EXPECT_EQ(header["workload"]["num_requests"], 5);
  ASSERT_EQ(header["sweep_points"].size(), 2u);
  for (const auto& point : header["sweep_points"]) {
    EXPECT_EQ(point["mode"], "poisson");
    ASSERT_EQ(point["arrival_s"].size(), 5u);  // measured requests only
    for (size_t i = 1; i < 5; ++i) EXPECT_GE(point["arrival_s"][i].get<double>(), point["arrival_s"][i - 1].get<double>());
  }
  // Twice the rate, same seed: the same gaps halved.
  EXPECT_NEAR(header["sweep_points"][1]["arrival_s"][4].get<double>() * 2,
              header["sweep_points"][0]["arrival_s"][4].get<double>(), 1e-9);
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["kind"], "request");
    EXPECT_EQ(lines[i]["index"], i - 1);
    EXPECT_EQ(lines[i]["warmup"], i == 1);
    EXPECT_EQ(lines[i]["prompt_token_ids"].size(), 7u);
    EXPECT_EQ(lines[i]["output_len"], 3);
    for (const auto& id : lines[i]["prompt_token_ids"]) EXPECT_LT(id.get<int>(), 512);
  }
  EXPECT_NE(lines[1]["prompt_token_ids"], lines[2]["prompt_token_ids"]);
}

TEST(Bench, ParityLogitsHoldEveryPromptPositionOfTheFirstRequests) {
  testing::TempDir dir;
  const std::string args = "bench --preset tiny --backend cpu --quiet --num-requests 3 --warmup-requests 0 "
                           "--input-len 20 --output-len 2 --parity-requests 2 --parity-logits ";
  ASSERT_EQ(run(args + dir.str("iol.f32")), 0);
  const std::string bytes = read_bytes(dir.str("iol.f32"));
  ASSERT_EQ(bytes.size(), size_t{2} * 20 * 512 * sizeof(float));
  std::vector<float> logits(bytes.size() / sizeof(float));
  std::memcpy(logits.data(), bytes.data(), bytes.size());
  float max_abs = 0;
  for (float v : logits) {
    ASSERT_TRUE(std::isfinite(v));
    max_abs = std::max(max_abs, std::fabs(v));
  }
  EXPECT_GT(max_abs, 0.1f);
  // Rows differ from position to position and prompt to prompt (not one row repeated).
  EXPECT_NE(std::memcmp(logits.data(), logits.data() + 512, 512 * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(logits.data(), logits.data() + 20 * 512, 512 * sizeof(float)), 0);
  const auto meta = nlohmann::json::parse(read_bytes(dir.str("iol.f32.json")));
  EXPECT_EQ(meta["prompt_lengths"], nlohmann::json::array({20, 20}));
  EXPECT_EQ(meta["vocab_size"], 512);
  std::string err;
  EXPECT_NE(run(args + dir.str("x.f32") + " --parity-requests 0", &err), 0);
  EXPECT_NE(err.find("--parity-requests: 0 is outside [1, "), std::string::npos) << err;
  EXPECT_NE(err.find("--parity-requests"), std::string::npos) << err;
}

// ---- Hardening (issue 14): the bench runs exactly what was asked, and results are never lost. ----

struct BoundedRun {
  int exit_code;
  std::string err;
  double seconds;
};

// Under a time limit (a hang is exit 124); a death by signal is -1.
BoundedRun run_bounded(const std::string& args, int seconds = 120) {
  testing::TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  const int status = std::system(("exec timeout -k 5 " + std::to_string(seconds) + " " + IOL_BINARY + " " + args + " 2>" +
                                  dir.str("err") + " >/dev/null").c_str());
  std::ifstream in(dir.str("err"));
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::string(std::istreambuf_iterator<char>(in), {}),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

void expect_one_line_error(const BoundedRun& r, int exit_code, const std::string& needle, const std::string& what) {
  EXPECT_EQ(r.exit_code, exit_code) << what << ": " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << ": " << r.err;
  EXPECT_EQ(r.err.rfind("iol: error: ", 0), 0u) << what << ": " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << what << ": expected '" << needle << "' in " << r.err;
}

const std::string kSmall = "bench --preset tiny --quiet --num-requests 2 --input-len 4 --output-len 2 ";

TEST(BenchHardening, WorkloadFlagsOutOfRangeOrNotApplyingAreErrors) {
  const std::pair<std::string, std::string> cases[] = {
      {"--num-requests -1", "--num-requests: -1 is outside [1, 10000000]"},
      {"--num-requests 0", "--num-requests: 0 is outside"},
      {"--input-len -1", "--input-len: -1 is outside [1, 16777216]"},
      {"--output-len 0", "--output-len: 0 is outside"},
      {"--input-len nan", "--input-len: 'nan' is not an integer"},
      {"--input-len 1e30", "--input-len: '1e30' is not an integer"},
      {"--output-len 2147483648", "--output-len: 2147483648 is outside [1, 16777216]"},
      {"--seed -1", "--seed: -1 is outside [0, 9223372036854775807]"},
      {"--warmup-requests -1", "--warmup-requests: -1 is outside [0, 10000000]"},
      {"--arrival poisson --request-rate 2 --burstiness -1", "--burstiness: -1 is outside [0.01, 100]"},
      {"--arrival poisson --request-rate 1e-9", "--request-rate: 1e-9 is outside [0.001, 1e+06]"},
      {"--arrival poisson --request-rate nan", "--request-rate: 'nan' is not finite"},
      {"--arrival closed --concurrency 0", "--concurrency: 0 is outside"},
      {"--request-rate 2", "--request-rate does not apply: it sets the Poisson arrival rate, and the arrival is offline"},
      {"--arrival closed --concurrency 2 --request-rate 2", "--request-rate does not apply"},
      {"--concurrency 4", "--concurrency does not apply: it sets the closed loop's requests in flight, and the arrival is offline"},
      {"--burstiness 2", "--burstiness does not apply"},
      {"--dataset x.jsonl", "--dataset does not apply: prompts are 'random'"},
      {"--parity-requests 2", "--parity-requests does not apply"},
      {"--max-model-len 5", "workload: requests of up to 4 + 2 tokens exceed --max-model-len 5"},
  };
  testing::TempDir dir;
  for (const auto& [flags, needle] : cases) {
    const std::string out = dir.str("r.jsonl");
    const BoundedRun r = run_bounded(kSmall + "--out " + out + " " + flags, 60);
    expect_one_line_error(r, 2, needle, flags);
    EXPECT_FALSE(std::filesystem::exists(out) && std::filesystem::file_size(out) > 0) << flags << ": measured anyway";
  }
}

TEST(BenchHardening, ScenarioValuesAreValidatedNotClampedOrIgnored) {
  testing::TempDir dir;
  const std::pair<std::string, std::string> cases[] = {
      {"input_len: {dist: fixed, value: .nan}", "input_len: the length must be an integer in [1, 1048576] (got nan)"},
      {"input_len: {dist: fixed, value: 1e30}", "input_len: the length must be an integer in [1, 1048576]"},
      {"input_len: 0", "input_len: the length must be an integer in [1, 1048576] (got 0)"},
      {"output_len: {dist: uniform, low: 4, high: 2147483648}", "output_len: high must be an integer in [1, 1048576]"},
      {"output_len: {dist: uniform, low: 1.5, high: 4}", "output_len: low must be an integer"},
      {"input_len: {dist: normal, mean: 8, stdev: -1}", "stdev finite and >= 0"},
      {"input_len: {dist: normal, mean: 8, stdev: 1, min: 0}", "bounds must satisfy 1 <= min <= max"},
      {"num_requests: -3", "num_requests must be in [1, 10000000] (got -3)"},
      {"seed: -1", "'seed' must be in [0, 2^63 - 1] (got -1)"},
      {"arrival: offline\nconcurrency: [1, 2]", "concurrency applies only to arrival closed (arrival is offline)"},
      {"arrival: closed\nconcurrency: 2\nrequest_rate: 4", "request_rate applies only to arrival poisson"},
      {"arrival: closed\nconcurrency: 2\nburstiness: 2", "'burstiness' applies only to arrival poisson"},
      {"arrival: poisson\nrequest_rate: 0.000000001", "request_rate must be in [0.001, 1e+06] requests/s"},
      {"dataset: d.jsonl", "dataset applies only to prompts sharegpt, jsonl or copy"},
      {"name: " + std::string(100, '[') + std::string(100, ']'), "nested deeper than 32 levels"},
  };
  for (const auto& [yaml, needle] : cases) {
    std::ofstream(dir.str("s.yaml")) << yaml << "\n";
    expect_one_line_error(run_bounded("bench --preset tiny --quiet --scenario " + dir.str("s.yaml") + " --out " +
                                      dir.str("r.jsonl"), 60), 1, needle, yaml);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.str("r.jsonl")));
  // --arrival replaces the scenario's arrival process: the record holds only what ran.
  std::ofstream(dir.str("s.yaml")) << "num_requests: 2\ninput_len: 4\noutput_len: 2\narrival: poisson\nrequest_rate: [1, 2]\nburstiness: 0.5\n";
  ASSERT_EQ(run_bounded("bench --preset tiny --quiet --scenario " + dir.str("s.yaml") + " --arrival closed --concurrency 2 --out " +
                        dir.str("r.jsonl")).exit_code, 0);
  const auto records = bench::read_jsonl(dir.str("r.jsonl"));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["workload"]["arrival"], "closed");
  EXPECT_EQ(records[0]["workload"]["request_rate"], nlohmann::json::array());
  EXPECT_EQ(records[0]["workload"]["burstiness"], 1.0);
  EXPECT_EQ(records[0]["workload"]["concurrency"], nlohmann::json::array({2}));
}

TEST(BenchHardening, APartialLastLineIsRefusedOrRepairedNeverAppendedTo) {
  testing::TempDir dir;
  const std::string out = dir.str("r.jsonl");
  ASSERT_EQ(run_bounded(kSmall + "--out " + out).exit_code, 0);
  const std::string good = read_bytes(out);
  // An interrupted write left half a record: the bench refuses before measuring, the file is untouched.
  std::ofstream(out, std::ios::app) << good.substr(0, good.size() / 2);
  const std::string damaged = read_bytes(out);
  const BoundedRun refused = run_bounded(kSmall + "--out " + out);
  expect_one_line_error(refused, 1, out + ": the last line", "partial line");
  EXPECT_NE(refused.err.find("incomplete record"), std::string::npos);
  EXPECT_EQ(read_bytes(out), damaged);
  // A whole record missing only its newline is repaired: the next record goes on its own line.
  std::ofstream(out, std::ios::trunc) << good.substr(0, good.size() - 1);
  ASSERT_EQ(run_bounded(kSmall + "--out " + out).exit_code, 0);
  const auto records = bench::read_jsonl(out);
  EXPECT_EQ(records.size(), 2u);
  EXPECT_EQ(run_bounded("report " + out + " --out " + dir.str("report.md")).exit_code, 0);
  // A file that is not JSON lines is never appended to.
  std::ofstream(dir.str("notes.md")) << "# my notes\nkeep me\n";
  expect_one_line_error(run_bounded(kSmall + "--out " + dir.str("notes.md")), 1, "is not a JSON-lines results file", "notes");
  EXPECT_EQ(read_bytes(dir.str("notes.md")), "# my notes\nkeep me\n");
}

TEST(BenchHardening, UnwritableOutputsFailBeforeMeasuring) {
  testing::TempDir dir;
  std::ofstream(dir.str("file")) << "x";
  std::filesystem::create_directories(dir.str("directory.jsonl"));
  const std::string slow = "bench --preset tiny --quiet --num-requests 500 --input-len 64 --output-len 64 --arrival closed "
                           "--concurrency 1,2 --out ";
  for (const auto& [out, needle] : std::vector<std::pair<std::string, std::string>>{
           {dir.str("file/r.jsonl"), "cannot create the directory"},
           {dir.str("directory.jsonl"), "is a directory"},
           {"/proc/version", "/proc/version"}}) {
    const BoundedRun r = run_bounded(slow + out, 60);
    EXPECT_NE(r.exit_code, 0) << out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_LT(r.seconds, 10) << out << ": the failure came after measuring";
  }
  // Outputs are never inputs.
  std::ofstream(dir.str("s.yaml")) << "num_requests: 1\ninput_len: 4\noutput_len: 2\n";
  const std::string scenario = read_bytes(dir.str("s.yaml"));
  expect_one_line_error(run_bounded("bench --preset tiny --quiet --scenario " + dir.str("s.yaml") + " --out " + dir.str("s.yaml")),
                        2, "is also an input", "--out = --scenario");
  EXPECT_EQ(read_bytes(dir.str("s.yaml")), scenario);
}

TEST(BenchHardening, ReportNeverWritesOverResults) {
  testing::TempDir dir;
  const std::string out = dir.str("R.jsonl");
  ASSERT_EQ(run_bounded(kSmall + "--out " + out).exit_code, 0);
  const std::string records = read_bytes(out);
  expect_one_line_error(run_bounded("report " + out + " --out " + out), 2, "would overwrite the results it reads", "same");
  EXPECT_EQ(read_bytes(out), records);
  // A results file named report.md: the default report path is the input itself.
  std::filesystem::create_directories(dir.str("d"));
  std::filesystem::copy_file(out, dir.str("d/report.md"));
  expect_one_line_error(run_bounded("report " + dir.str("d/report.md")), 2, "would overwrite the results it reads", "report.md");
  EXPECT_EQ(read_bytes(dir.str("d/report.md")), records);
  // Nor over another results file.
  std::filesystem::copy_file(out, dir.str("other.jsonl"));
  expect_one_line_error(run_bounded("report " + out + " --out " + dir.str("other.jsonl")), 2, "holds benchmark result records",
                        "other results");
  EXPECT_EQ(read_bytes(dir.str("other.jsonl")), records);
  EXPECT_EQ(bench::read_jsonl(out).size(), 1u);
  // Records with unexpected types give a report (placeholders), not a library exception.
  std::ofstream(dir.str("odd.jsonl")) << R"({"run_id": 5, "workload": "x", "engine": [1], "metrics": {"ttft_ms": "fast"}})" << "\n";
  const BoundedRun odd = run_bounded("report " + dir.str("odd.jsonl") + " --out " + dir.str("odd.md"));
  EXPECT_EQ(odd.exit_code, 0) << odd.err;
  EXPECT_NE(read_bytes(dir.str("odd.md")).find("# Benchmark report"), std::string::npos);
}

TEST(BenchHardening, TracesPathIsDerivedFromThePathNotBySearchingIt) {
  testing::TempDir dir;
  for (const auto& [out, traces] : std::vector<std::pair<std::string, std::string>>{
           {dir.str("a.jsonl"), dir.str("a.requests.jsonl")},
           {dir.str("runs.jsonl.v2"), dir.str("runs.jsonl.v2.requests.jsonl")},
           {dir.str("x.jsonl.d/r.jsonl"), dir.str("x.jsonl.d/r.requests.jsonl")}}) {
    ASSERT_EQ(run_bounded(kSmall + "--out " + out).exit_code, 0) << out;
    const auto records = bench::read_jsonl(out);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["requests_file"], traces);
    EXPECT_EQ(read_lines(traces).size(), 2u) << traces;
  }
}

// SIGTERM/SIGINT during a sweep: the point in progress is recorded as interrupted, later points
// do not run, the exit is non-zero, and the file stays readable.
void expect_interrupted_record(const char* signal_name, int exit_code) {
  testing::TempDir dir;
  const std::string out = dir.str("r.jsonl");
  const std::string bench = std::string(IOL_BINARY) + " bench --preset tiny --num-requests 100000 --input-len 16 "
                            "--output-len 16 --arrival closed --concurrency 1,2 --out " + out;
  // The signal goes once the first progress line shows the point running (at most 60 s of waiting).
  const std::string err_file = dir.str("err");
  const int status = std::system(("sh -c '" + bench + " 2>" + err_file + " & pid=$!; i=0; while ! grep -q requests " +
                                  err_file + " && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; sleep 0.5; kill -" +
                                  signal_name + " $pid; wait $pid; exit $?'").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), exit_code) << read_bytes(dir.str("err"));
  const std::string err = read_bytes(dir.str("err"));
  EXPECT_NE(err.find("interrupted by signal"), std::string::npos) << err;
  const auto records = bench::read_jsonl(out);
  ASSERT_EQ(records.size(), 1u) << "a later point ran, or the point was lost";
  EXPECT_EQ(records[0]["status"], "interrupted");
  EXPECT_EQ(records[0]["workload"]["sweep"]["label"], "concurrency=1");
  EXPECT_EQ(bench::validate_json_schema(schema(), records[0]), "");
  EXPECT_LT(records[0]["metrics"]["num_completed"].get<int64_t>(), 100000);
  EXPECT_EQ(run_bounded("report " + out + " --out " + dir.str("r.md")).exit_code, 0);
}

TEST(BenchHardening, SigtermRecordsThePointAsInterrupted) { expect_interrupted_record("TERM", 128 + 15); }
TEST(BenchHardening, SigintRecordsThePointAsInterrupted) { expect_interrupted_record("INT", 128 + 2); }

TEST(BenchHardening, EveryRequestFailingExitsNonZeroWithTheRecordKept) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --dtype f32 --out " + dir.str("m")), 0);
  // NaN final norm: every logit of every request is NaN.
  const std::string file = dir.str("m/model.safetensors");
  std::ifstream in(file, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  in.close();
  const auto entry = nlohmann::json::parse(header)["model.norm.weight"];
  std::fstream patch(file, std::ios::binary | std::ios::in | std::ios::out);
  patch.seekp(static_cast<std::streamoff>(8 + n + entry["data_offsets"][0].get<uint64_t>()));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (uint64_t i = entry["data_offsets"][0]; i < entry["data_offsets"][1].get<uint64_t>(); i += 4)
    patch.write(reinterpret_cast<const char*>(&nan), 4);
  patch.close();
  const std::string out = dir.str("r.jsonl");
  const BoundedRun r = run_bounded("bench --model " + dir.str("m") + " --quiet --num-requests 3 --input-len 4 --output-len 2 --out " + out);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("iol: error: every request failed at offline (recorded in " + out + "); the first error: request"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("non-finite logits"), std::string::npos) << r.err;
  const auto records = bench::read_jsonl(out);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["metrics"]["num_failed"], 3);
  EXPECT_EQ(records[0]["status"], "complete");
}

}  // namespace
}  // namespace iol
