// iol bench and iol report end to end: every emitted record validates against the JSON Schema,
// sweeps give one record per point, traces are complete, and errors are one line.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
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
  EXPECT_EQ(err, "iol: error: /nonexistent/ds.jsonl: cannot open dataset file\n");
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
  const std::string args = "bench --preset tiny --quiet --out " + dir.str("results.jsonl") +
                           " --num-requests 5 --warmup-requests 1 --input-len 7 --output-len 3 --arrival poisson "
                           "--request-rate 4,8 --seed 3 --export-requests ";
  ASSERT_EQ(run(args + dir.str("a/requests.jsonl")), 0);
  ASSERT_EQ(run(args + dir.str("b.jsonl")), 0);
  EXPECT_EQ(read_bytes(dir.str("a/requests.jsonl")), read_bytes(dir.str("b.jsonl"))) << "not deterministic";
  EXPECT_FALSE(std::ifstream(dir.str("results.jsonl")).good()) << "an export must not run the benchmark";
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
  EXPECT_NE(err.find("--parity-requests"), std::string::npos) << err;
}

}  // namespace
}  // namespace iol
