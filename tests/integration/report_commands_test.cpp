// iol kv, iol cost and iol report --html end to end: the calculator's maximum sequences equal
// what the engine admits for the same pool on the CPU backend, the cost command reproduces the
// seed's example and derives ÷N from committed GPU records, and bad input is a one-line error.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../support/temp_dir.hpp"
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
  for (const std::string& pool : {"3000000", "5MiB"}) {
    SCOPED_TRACE(pool);
    const auto plan = kv_json("--kv-cache-memory " + pool + " --context 50");
    const auto record = bench_once(dir, "--kv-cache-memory " + pool + " --input-len 50 --output-len 1 --num-requests 200");
    EXPECT_EQ(record["engine"]["config"]["num_kv_blocks"], plan["num_blocks"]);
    EXPECT_EQ(record["engine"]["config"]["kv_cache_memory_bytes"].get<int64_t>(),
              plan["num_blocks"].get<int64_t>() * plan["bytes_per_block"].get<int64_t>());
    EXPECT_EQ(record["target"]["num_preemptions"], 0);
    EXPECT_GT(plan["contexts"][0]["admitted_paged"].get<int64_t>(), 1);
    EXPECT_EQ(record["target"]["peak_num_running"], plan["contexts"][0]["admitted_paged"]) << plan.dump();
  }
  // Contiguous: every sequence reserves max_model_len (100 tokens = 7 blocks) whatever its length.
  const auto plan = kv_json("--kv-cache-memory 3000000 --context 20 --max-model-len 100");
  const auto record = bench_once(dir, "--kv-cache-memory 3000000 --input-len 20 --output-len 1 --num-requests 200 "
                                      "--kv-layout contiguous --max-model-len 100");
  EXPECT_EQ(record["target"]["peak_num_running"], plan["admitted_contiguous"]) << plan.dump();
  EXPECT_LT(plan["admitted_contiguous"].get<int64_t>(), plan["contexts"][0]["admitted_paged"].get<int64_t>());
  // max_num_seqs caps both sides.
  const auto capped = kv_json("--kv-cache-memory 5MiB --context 50 --max-num-seqs 3");
  const auto capped_record = bench_once(dir, "--kv-cache-memory 5MiB --input-len 50 --output-len 1 --num-requests 40 --max-num-seqs 3");
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
