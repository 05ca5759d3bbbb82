// iol kv, iol cost and iol report --html end to end: the calculator's maximum sequences equal
// what the engine admits for the same pool on the CPU backend, the cost command reproduces the
// seed's example and derives ÷N from committed GPU records, and bad input is a one-line error.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../support/temp_dir.hpp"
#include "iol/bench/json_schema.hpp"
#include "iol/bench/results.hpp"

namespace iol {
namespace {

struct Result {
  int code = -1;
  std::string out, err;
};

Result run(const std::string& args) {
  testing::TempDir dir;
  int status = std::system((std::string(IOL_BINARY) + " " + args + " >" + dir.str("out") + " 2>" + dir.str("err")).c_str());
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir.str("out")), slurp(dir.str("err"))};
}

std::string source(const std::string& path) { return std::string(IOL_SOURCE_DIR) + "/" + path; }

// One bench run on the CPU backend; returns its record.
nlohmann::json bench_once(const testing::TempDir& dir, const std::string& args) {
  const std::string out = dir.str("admission.jsonl");
  std::filesystem::remove(out);
  const Result r = run("bench --preset tiny --backend cpu --quiet --arrival offline --warmup-requests 0 --no-prefix-caching "
                       "--out " + out + " " + args);
  EXPECT_EQ(r.code, 0) << r.err;
  auto records = bench::read_jsonl(out);
  EXPECT_EQ(records.size(), 1u);
  return records.empty() ? nlohmann::json() : records.front();
}

nlohmann::json kv_json(const std::string& args) {
  const Result r = run("kv --preset tiny --backend cpu --json " + args);
  EXPECT_EQ(r.code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST(KvCommand, MaxSequencesEqualTheEnginesAdmissionOnTheCpuBackend) {
  testing::TempDir dir;
  // 3,000,000 bytes is not a whole number of blocks: both sides must floor the same way.
  // 50-token prompts, one output token: each sequence holds 50 tokens of KV at its only step.
  // (iol kv reads units; iol bench takes bytes: 5MiB = 5242880.)
  for (const auto& [pool, bytes] : {std::pair<std::string, std::string>{"3000000", "3000000"}, {"5MiB", "5242880"}}) {
    SCOPED_TRACE(pool);
    const auto plan = kv_json("--kv-cache-memory " + pool + " --context 50");
    const auto record = bench_once(dir, "--kv-cache-memory " + bytes + " --input-len 50 --output-len 1 --num-requests 40");
    EXPECT_EQ(record["engine"]["config"]["num_kv_blocks"], plan["num_blocks"]);
    EXPECT_EQ(record["engine"]["config"]["kv_cache_memory_bytes"].get<int64_t>(),
              plan["num_blocks"].get<int64_t>() * plan["bytes_per_block"].get<int64_t>());
    EXPECT_EQ(record["target"]["num_preemptions"], 0);
    EXPECT_GT(plan["contexts"][0]["admitted_paged"].get<int64_t>(), 1);
    EXPECT_EQ(record["target"]["peak_num_running"], plan["contexts"][0]["admitted_paged"]) << plan.dump();
  }
  // Contiguous: every sequence reserves max_model_len (100 tokens = 7 blocks) whatever its length.
  const auto plan = kv_json("--kv-cache-memory 3000000 --context 20 --max-model-len 100");
  const auto record = bench_once(dir, "--kv-cache-memory 3000000 --input-len 20 --output-len 1 --num-requests 40 "
                                      "--kv-layout contiguous --max-model-len 100");
  EXPECT_EQ(record["target"]["peak_num_running"], plan["admitted_contiguous"]) << plan.dump();
  EXPECT_LT(plan["admitted_contiguous"].get<int64_t>(), plan["contexts"][0]["admitted_paged"].get<int64_t>());
  // max_num_seqs caps both sides.
  const auto capped = kv_json("--kv-cache-memory 5MiB --context 50 --max-num-seqs 3");
  const auto capped_record = bench_once(dir, "--kv-cache-memory 5242880 --input-len 50 --output-len 1 --num-requests 40 --max-num-seqs 3");
  EXPECT_EQ(capped["contexts"][0]["admitted_paged"], 3);
  EXPECT_EQ(capped_record["target"]["peak_num_running"], 3);
}

TEST(KvCommand, TextOutputAndOneLineErrors) {
  const Result text = run("kv --preset llama-3.1-8b --gpu-memory 80GiB --context 4096");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("bytes per token: 131072 (128.00 KiB) = 32 × 8 × 128 × 2 (K, V) × 2"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("| 4096 | 512.00 MiB | 256 | 114 | 114 | 3 |"), std::string::npos) << text.out;
  for (const std::string& bad : {"kv --preset tiny --gpu-memory 80parsecs", "kv --gpu-memory 80GiB", "kv --preset nope --gpu-memory 80GiB",
                                 "kv --preset tiny --kv-dtype int4 --gpu-memory 80GiB", "kv --preset tiny --backend tpu",
                                 "kv --preset llama-3.1-70b --gpu-memory 80GiB", "kv --config /nonexistent/config.json --gpu-memory 1GiB"}) {
    SCOPED_TRACE(bad);
    const Result r = run(bad);
    EXPECT_NE(r.code, 0);
    EXPECT_TRUE(r.out.empty()) << r.out;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // one line
    EXPECT_EQ(r.err.rfind("iol: error: ", 0), 0u) << r.err;
  }
}

TEST(CostCommand, SeedExampleAndFactorsFromCommittedGpuRecords) {
  const Result fleet = run("cost --gpu H100 --gpus 8 --years 1 --json");
  ASSERT_EQ(fleet.code, 0) << fleet.err;
  const auto f = nlohmann::json::parse(fleet.out)["fleet"];
  EXPECT_NEAR(f["cloud_usd"].get<double>(), 209539.2, 1e-6);
  EXPECT_NEAR(f["on_premise_usd"].get<double>(), 89948.5568, 1e-6);
  // The user changes an input: a price file overriding one key.
  testing::TempDir dir;
  std::ofstream(dir.str("p.yaml")) << "gpus:\n  H100:\n    cloud_usd_per_gpu_hour: 2.0\n";
  const Result changed = run("cost --gpu H100 --gpus 8 --years 1 --json --prices " + dir.str("p.yaml"));
  ASSERT_EQ(changed.code, 0) << changed.err;
  EXPECT_NEAR(nlohmann::json::parse(changed.out)["fleet"]["cloud_usd"].get<double>(), 8 * 2.0 * 8760, 1e-6);

  // H200 records: iol offline vs the best PyTorch eager batch of the same workload point.
  const Result priced = run("cost --json " + source("bench/results/h200/offline-128-128.jsonl") + " " +
                            source("bench/results/h200/pytorch-offline-128-128.jsonl"));
  ASSERT_EQ(priced.code, 0) << priced.err;
  const auto rows = nlohmann::json::parse(priced.out)["records"]["rows"];
  const auto iol_records = bench::read_jsonl(source("bench/results/h200/offline-128-128.jsonl"));
  const auto pt_records = bench::read_jsonl(source("bench/results/h200/pytorch-offline-128-128.jsonl"));
  double best_pt = 0;
  std::string best_pt_id;
  for (const auto& r : pt_records)
    if (r["metrics"]["output_throughput"].get<double>() > best_pt) {
      best_pt = r["metrics"]["output_throughput"].get<double>();
      best_pt_id = r["run_id"].get<std::string>();
    }
  ASSERT_EQ(rows.size(), iol_records.size() + pt_records.size());
  for (size_t i = 0; i < iol_records.size(); ++i) {
    EXPECT_EQ(rows[i]["run_id"], iol_records[i]["run_id"]);
    EXPECT_EQ(rows[i]["gpu"], "H200");
    EXPECT_EQ(rows[i]["baseline_run_id"], best_pt_id);
    EXPECT_NEAR(rows[i]["cost_factor_cloud"].get<double>(), iol_records[i]["metrics"]["output_throughput"].get<double>() / best_pt, 1e-9);
    EXPECT_GT(rows[i]["cost_factor_cloud"].get<double>(), 1.5);  // measured: iol ≥ 2× transformers eager here
  }
  const Result md = run("cost " + source("bench/results/h200/offline-128-128.jsonl") + " --request-rate 50");
  ASSERT_EQ(md.code, 0) << md.err;
  EXPECT_NE(md.out.find("| 20261202T104754Z-477c39 | iol (cuda) |"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("cloud ÷ on-premise"), std::string::npos);
  for (const std::string& bad : {"cost --gpu TPU", "cost --prices /nonexistent.yaml", "cost --years 0", "cost /nonexistent.jsonl",
                                 "cost --request-rate 1 --tokens-per-month 5"}) {
    SCOPED_TRACE(bad);
    const Result r = run(bad);
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_EQ(r.err.rfind("iol: error: ", 0), 0u) << r.err;
  }
  const Result print = run("cost --print-prices");
  EXPECT_EQ(print.code, 0);
  EXPECT_NE(print.out.find("date: \"2025-06\""), std::string::npos);
}

}  // namespace
}  // namespace iol

namespace iol {
namespace {

std::vector<std::string> attribute_values(const std::string& html, const std::string& attribute) {
  std::vector<std::string> out;
  const std::string needle = attribute + "=\"";
  for (size_t at = html.find(needle); at != std::string::npos; at = html.find(needle, at + 1)) {
    const size_t begin = at + needle.size();
    out.push_back(html.substr(begin, html.find('"', begin) - begin));
  }
  return out;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every data-run-id in the page names a record, and every record appears.
void expect_traceable(const std::string& html, const std::vector<nlohmann::json>& records) {
  std::set<std::string> ids;
  for (const auto& r : records) ids.insert(r["run_id"].get<std::string>());
  const auto referenced = attribute_values(html, "data-run-id");
  ASSERT_FALSE(referenced.empty());
  for (const auto& id : referenced) EXPECT_TRUE(ids.count(id)) << "data-run-id " << id << " is no record";
  for (const auto& id : ids) EXPECT_NE(html.find("id=\"run-" + id + "\""), std::string::npos) << id;
  // Self-contained: no script, nothing loaded from elsewhere.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
}

TEST(ReportHtml, GpuFixtureRecordsRenderWithEveryFigureTraceable) {
  testing::TempDir dir;
  std::vector<std::string> files;
  for (const auto& gpu : {"h200", "h100"})
    for (const auto& entry : std::filesystem::directory_iterator(source(std::string("bench/results/") + gpu)))
      if (entry.path().extension() == ".jsonl" && entry.path().string().find(".requests.") == std::string::npos)
        files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  std::string args;
  std::vector<nlohmann::json> records;
  for (const auto& f : files) {
    args += " " + f;
    auto more = bench::read_jsonl(f);
    records.insert(records.end(), more.begin(), more.end());
  }
  const Result r = run("report --html --out " + dir.str("gpu.html") + args);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string html = slurp(dir.str("gpu.html"));
  expect_traceable(html, records);
  // Charts: the per-point throughput bars have one series per configuration; latency charts p50/p90/p99.
  EXPECT_GE(count(html, "<svg class=\"chart\""), 5u);
  EXPECT_EQ(count(html, "<g class=\"series\" data-series=\"p99\">"), 3u);  // TTFT, TPOT, ITL
  EXPECT_EQ(count(html, "class=\"mark\""), count(html, "data-value=\""));
  // Energy bars: one per record that measured energy (all GPU records here).
  size_t measured = 0;
  for (const auto& rec : records) measured += rec["energy"]["j_per_output_token"].is_number();
  const size_t energy_at = html.find("Energy per output token");
  ASSERT_NE(energy_at, std::string::npos);
  EXPECT_EQ(count(html.substr(energy_at, html.find("</svg>", energy_at) - energy_at), "class=\"mark\""), measured);
  // The cost section prices them as H200/H100 and derives ÷N from the PyTorch records.
  EXPECT_NE(html.find("<td class=\"l\">H200</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"l\">H100</td>"), std::string::npos);
  EXPECT_NE(html.find("no timeline"), std::string::npos);  // committed records predate timelines: said, not hidden
  // Markdown carries the cost section too.
  const Result md = run("report --out " + dir.str("gpu.md") + args);
  ASSERT_EQ(md.code, 0) << md.err;
  EXPECT_NE(slurp(dir.str("gpu.md")).find("## Cost"), std::string::npos);
}

TEST(ReportHtml, BadInputIsAOneLineErrorAndLeavesNoReport) {
  testing::TempDir dir;
  std::ofstream(dir.str("bad.jsonl")) << "{\"run_id\": \"a\"}\nnot json\n";
  const Result r = run("report --html " + dir.str("bad.jsonl") + " --out " + dir.str("out.html"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("bad.jsonl"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.str("out.html")));
  const Result missing_baseline = run("report --html " + source("bench/results/h100/batch1-decode.jsonl") + " --baseline nope --out " +
                                      dir.str("out.html"));
  EXPECT_NE(missing_baseline.code, 0);
  EXPECT_NE(missing_baseline.err.find("baseline run 'nope'"), std::string::npos) << missing_baseline.err;
  EXPECT_FALSE(std::filesystem::exists(dir.str("out.html")));
}

TEST(Ablation, OneCommandRunsEveryAvailableLeverAndWritesOneReport) {
  testing::TempDir dir;
  const std::string out = dir.str("abl/results.jsonl");
  const Result r = run("bench --preset tiny --backend cpu --quiet --ablation " + source("bench/scenarios/ablation-cpu.yaml") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto records = bench::read_jsonl(out);
  ASSERT_EQ(records.size(), 6u);  // all off, 4 CPU levers alone, all on
  std::ifstream schema_in(source("bench/schema/results.schema.json"));
  const auto schema = nlohmann::json::parse(schema_in);
  const std::vector<std::string> steps = {"all-off", "+inflight-batching", "+paged-kv", "+prefix-caching", "+chunked-prefill", "all-on"};
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& a = records[i]["ablation"];
    EXPECT_EQ(a["step"], steps[i]);
    EXPECT_EQ(a["order"], i);
    EXPECT_EQ(a["id"], records[0]["ablation"]["id"]);
    EXPECT_EQ(bench::validate_json_schema(schema, records[i]), "");
  }
  const auto& off = records[0]["engine"]["levers"];
  EXPECT_EQ(off["batching"], "static");
  EXPECT_EQ(off["kv_layout"], "contiguous");
  EXPECT_FALSE(off["prefix_caching"].get<bool>());
  EXPECT_FALSE(off["chunked_prefill"].get<bool>());
  EXPECT_EQ(records[1]["engine"]["levers"]["batching"], "inflight");
  EXPECT_EQ(records[1]["engine"]["levers"]["kv_layout"], "contiguous");
  EXPECT_EQ(records[2]["engine"]["levers"]["kv_layout"], "paged");
  EXPECT_EQ(records[2]["engine"]["levers"]["batching"], "static");
  EXPECT_EQ(records[5]["engine"]["levers"]["batching"], "inflight");
  EXPECT_TRUE(records[5]["engine"]["levers"]["prefix_caching"].get<bool>());
  std::set<std::string> skipped;
  for (const auto& s : records[0]["ablation"]["skipped"]) skipped.insert(s["lever"].get<std::string>());
  for (const char* lever : {"cuda-graphs", "decode-gemv", "quantization", "speculative-decoding", "pytorch-baseline"})
    EXPECT_TRUE(skipped.count(lever)) << lever;
  // One report: Markdown and HTML beside the results, the waterfall with one bar per step.
  const std::string base = dir.str("abl/ablation-" + records[0]["ablation"]["id"].get<std::string>());
  const std::string html = slurp(base + ".html");
  ASSERT_FALSE(html.empty()) << r.err;
  expect_traceable(html, records);
  const size_t waterfall = html.find("Output tokens/s by lever");
  ASSERT_NE(waterfall, std::string::npos);
  EXPECT_EQ(count(html.substr(waterfall, html.find("</svg>", waterfall) - waterfall), "class=\"mark\""), 6u);
  EXPECT_NE(html.find("<b>cuda-graphs</b>: needs the cuda backend"), std::string::npos);
  const std::string md = slurp(base + ".md");
  EXPECT_NE(md.find("| +paged-kv | " + records[2]["run_id"].get<std::string>()), std::string::npos) << md;
  EXPECT_NE(md.find("- quantization: not lossless"), std::string::npos);
  // A bad scenario fails before any run and writes nothing.
  const Result bad = run("bench --preset tiny --quiet --ablation /nonexistent.yaml --out " + dir.str("none.jsonl"));
  EXPECT_NE(bad.code, 0);
  EXPECT_EQ(bad.err.find('\n'), bad.err.size() - 1) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir.str("none.jsonl")));
}

}  // namespace
}  // namespace iol
