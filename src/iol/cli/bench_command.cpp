// iol bench: run a workload against the in-process engine, append one result record per sweep
// point to a .jsonl file (docs/results-schema.md), and raw per-request traces beside it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <memory>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/backend/backend_factory.hpp"
#include "iol/bench/environment.hpp"
#include "iol/bench/http_runner.hpp"
#include "iol/bench/metrics.hpp"
#include "iol/bench/nvml_sampler.hpp"
#include "iol/bench/parity_logits.hpp"
#include "iol/bench/request_list.hpp"
#include "iol/bench/results.hpp"
#include "iol/bench/results_file.hpp"
#include "iol/bench/runner.hpp"
#include "iol/bench/workload.hpp"
#include "iol/cli/ablation_plan.hpp"
#include "iol/cli/commands.hpp"
#include "iol/cli/engine_options.hpp"
#include "iol/cli/interrupt.hpp"
#include "iol/cli/model_options.hpp"
#include "iol/cli/numeric_flags.hpp"
#include "iol/cli/output_file.hpp"
#include "iol/cli/tokenizer_loading.hpp"
#include "iol/core/checked_math.hpp"
#include "iol/core/error.hpp"
#include "iol/core/same_file.hpp"
#include "iol/core/system_memory.hpp"
#include "iol/git_commit.hpp"
#include "iol/report/ablation_view.hpp"
#include "iol/report/cost_model.hpp"
#include "iol/report/html_report.hpp"
#include "iol/version.hpp"

namespace iol::cli {

namespace {

struct BenchOptions {
  ModelOptions model;
  EngineOptions engine;
  std::string scenario;
  int64_t num_requests = -1, warmup_requests = -1, input_len = -1, output_len = -1;
  std::string arrival;
  std::string prompts, dataset;
  std::vector<int64_t> concurrency;
  std::vector<double> request_rate;
  double burstiness = -1;
  int64_t seed = -1;
  std::string slo;
  std::string out = "reports/results.jsonl";
  std::string export_requests;
  std::string parity_logits;
  int64_t parity_requests = 4;
  std::string tag;
  std::string nvml_library = "libnvidia-ml.so.1";
  bool quiet = false;
  bool measure_ceilings = false;
  bool list_backends = false;
  std::function<bool(const char*)> given;  // whether a flag was on the command line
  std::string ablation;               // --ablation SCENARIO: run the lever ablation on it
  nlohmann::json ablation_record;     // set per step by the ablation: the record's `ablation`
  // --target: an OpenAI-compatible server instead of the in-process engine.
  std::string target, endpoint = "completions", api_key, tokenizer_dir, target_name;
};

// A flag that does not apply to the run is an error, never silently ignored.
void refuse_unless(const BenchOptions& o, const char* flag, bool applies, const std::string& why) {
  if (o.given(flag) && !applies) throw UsageError(fmt::format("{} does not apply: {}", flag, why));
}

bench::WorkloadSpec make_spec(const BenchOptions& o) {
  bench::WorkloadSpec spec = o.scenario.empty() ? bench::WorkloadSpec{} : bench::WorkloadSpec::from_yaml_file(o.scenario);
  if (o.scenario.empty()) spec.input_len.value = spec.output_len.value = 128;
  if (o.num_requests >= 0) spec.num_requests = o.num_requests;
  if (o.warmup_requests >= 0) spec.warmup_requests = o.warmup_requests;
  if (o.input_len >= 0) spec.input_len = {bench::LengthDistribution::Kind::Fixed, static_cast<double>(o.input_len)};
  if (o.output_len >= 0) spec.output_len = {bench::LengthDistribution::Kind::Fixed, static_cast<double>(o.output_len)};
  if (!o.arrival.empty()) {
    const bench::ArrivalMode scenario_mode = spec.arrival;
    if (o.arrival == "offline") spec.arrival = bench::ArrivalMode::Offline;
    else if (o.arrival == "closed") spec.arrival = bench::ArrivalMode::Closed;
    else if (o.arrival == "poisson") spec.arrival = bench::ArrivalMode::Poisson;
    else throw UsageError(fmt::format("--arrival must be offline, closed or poisson (got '{}')", o.arrival));
    // Another arrival process replaces the scenario's as a whole, with its settings.
    if (spec.arrival != scenario_mode) {
      spec.concurrency.clear();
      spec.request_rate.clear();
      spec.burstiness = 1.0;
    }
  }
  const char* mode = bench::arrival_mode_name(spec.arrival);
  refuse_unless(o, "--concurrency", spec.arrival == bench::ArrivalMode::Closed,
                fmt::format("it sets the closed loop's requests in flight, and the arrival is {} (add --arrival closed)", mode));
  refuse_unless(o, "--request-rate", spec.arrival == bench::ArrivalMode::Poisson,
                fmt::format("it sets the Poisson arrival rate, and the arrival is {} (add --arrival poisson)", mode));
  refuse_unless(o, "--burstiness", spec.arrival == bench::ArrivalMode::Poisson,
                fmt::format("it shapes Poisson arrivals, and the arrival is {} (add --arrival poisson)", mode));
  if (!o.concurrency.empty()) spec.concurrency = o.concurrency;
  if (!o.request_rate.empty()) spec.request_rate = o.request_rate;
  if (o.given("--burstiness")) spec.burstiness = o.burstiness;
  if (o.seed >= 0) spec.seed = static_cast<uint64_t>(o.seed);
  if (!o.prompts.empty()) {
    spec.prompt_source = o.prompts;
    if (!bench::prompts_read_dataset(o.prompts)) spec.dataset.clear();  // the scenario's no longer applies
  }
  if (!o.dataset.empty()) spec.dataset = o.dataset;
  refuse_unless(o, "--dataset", bench::prompts_read_dataset(spec.prompt_source),
                fmt::format("prompts are '{}'; a dataset is read with --prompts sharegpt, jsonl or copy", spec.prompt_source));
  spec.validate(o.scenario.empty() ? "command line" : o.scenario);
  return spec;
}

// Progress on stderr: redrawn in place on a terminal, a line per quarter otherwise.
class Progress {
 public:
  Progress(bool quiet, std::string label) : quiet_(quiet), tty_(isatty(2) != 0), label_(std::move(label)) {}
  void update(int64_t done, int64_t total, int64_t tokens, double elapsed) {
    if (quiet_ || total == 0) return;
    const double rate = elapsed > 0 ? static_cast<double>(tokens) / elapsed : 0;
    const double eta = done > 0 ? elapsed * static_cast<double>(total - done) / static_cast<double>(done) : 0;
    if (tty_) {
      const int width = 30, filled = static_cast<int>(width * done / total);
      fmt::print(stderr, "\r{} [{}{}] {}/{} requests, {:.0f} tok/s, ETA {:.0f} s ", label_, std::string(filled, '#'),
                 std::string(width - filled, '.'), done, total, rate, eta);
      if (done == total) fmt::print(stderr, "\n");
    } else if (done * 4 / total != last_quarter_ || done == total) {
      last_quarter_ = done * 4 / total;
      fmt::print(stderr, "{}: {}/{} requests, {:.0f} tok/s\n", label_, done, total, rate);
    }
  }

 private:
  bool quiet_, tty_;
  std::string label_;
  int64_t last_quarter_ = -1;
};

std::string make_run_id() {
  std::time_t t = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&t));
  return fmt::format("{}-{:06x}", stamp, std::random_device{}() & 0xffffff);
}

void run_ablation(const BenchOptions& o);

// What a record says about the thing measured (the "engine" object), and the runner per point.
struct BenchTarget {
  nlohmann::json engine;
  std::function<std::unique_ptr<bench::Runner>()> make_runner;
  std::function<double()> now;  // seconds, for progress
};

// One record per sweep point, appended to the results file opened (and checked) before anything
// ran; SIGINT/SIGTERM ends the current point, which is recorded as interrupted, and no later one runs.
void run_sweep(const BenchOptions& o, const bench::WorkloadSpec& spec, const bench::Slo& slo,
               const std::vector<bench::BenchRequest>& requests, const BenchTarget& target, const nlohmann::json& ceilings,
               bench::JsonlAppender& results, bench::JsonlAppender& traces) {
  bench::NvmlSampler nvml(o.nvml_library);
  const nlohmann::json environment = bench::collect_environment(nvml);
  const std::string base_id = make_run_id();
  const auto points = bench::sweep_points(spec);
  InterruptGuard interrupt;
  for (size_t p = 0; p < points.size(); ++p) {
    const bench::SweepPoint& point = points[p];
    std::unique_ptr<bench::Runner> runner = target.make_runner();
    runner->set_stop_flag(&InterruptGuard::received());
    Progress progress(o.quiet, fmt::format("{} {}", spec.name, point.label()));
    const double start = target.now();
    nvml.start();
    auto traces_of_point = runner->run(requests, point, spec, [&](int64_t done, int64_t total, int64_t tokens) {
      progress.update(done, total, tokens, target.now() - start);
    });
    bench::TelemetrySummary telemetry = nvml.stop();
    bench::RunMetrics metrics = bench::compute_run_metrics(traces_of_point, slo);
    const int signal = InterruptGuard::received().load();

    const std::string run_id = points.size() == 1 ? base_id : fmt::format("{}-{}", base_id, p);
    std::optional<double> energy = telemetry.energy_counter_j ? telemetry.energy_counter_j : telemetry.energy_integrated_j;
    auto optional_json = [](std::optional<double> v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
    std::optional<double> j_per_token, tokens_per_s_per_w;
    if (energy && metrics.total_output_tokens > 0) j_per_token = *energy / static_cast<double>(metrics.total_output_tokens);
    if (telemetry.mean_power_w && *telemetry.mean_power_w > 0) tokens_per_s_per_w = metrics.output_throughput / *telemetry.mean_power_w;
    nlohmann::json workload = spec.to_json();
    workload["sweep"] = {{"mode", bench::arrival_mode_name(point.mode)},
                         {"concurrency", point.mode == bench::ArrivalMode::Closed ? nlohmann::json(point.concurrency) : nlohmann::json(nullptr)},
                         {"request_rate", point.mode == bench::ArrivalMode::Poisson ? nlohmann::json(point.request_rate) : nlohmann::json(nullptr)},
                         {"label", point.label()}};
    nlohmann::json engine = target.engine;
    engine["runner"] = runner->name();
    nlohmann::json record = {
        {"schema_version", bench::kResultsSchemaVersion},
        {"run_id", run_id},
        {"tag", o.tag},
        {"engine", engine},
        {"workload", workload},
        {"slo", slo.to_json()},
        {"metrics", metrics.to_json()},
        {"energy", {{"energy_j", optional_json(energy)},
                    {"source", telemetry.energy_counter_j ? "counter" : telemetry.energy_integrated_j ? "power_integration" : "none"},
                    {"j_per_output_token", optional_json(j_per_token)},
                    {"output_tokens_per_s_per_w", optional_json(tokens_per_s_per_w)}}},
        {"telemetry", telemetry.to_json()},
        {"target", runner->target_stats()},
        {"process", bench::process_stats()},
        {"environment", environment},
        {"requests_file", traces.path()}};
    if (!ceilings.is_null()) record["ceilings"] = ceilings;
    if (!o.ablation_record.is_null()) record["ablation"] = o.ablation_record;
    record["status"] = signal ? "interrupted" : "complete";
    results.append(record);
    bench::append_request_traces(traces, run_id, traces_of_point);
    const nlohmann::json& idle = record["target"].value("device_idle_fraction", nlohmann::json(nullptr));
    const std::string device_idle = idle.is_number() ? fmt::format("; device idle {:.1f}%", 100.0 * idle.get<double>()) : "";
    fmt::print(stderr, "iol bench: {} {}: {} ok, {} failed, {} aborted in {:.2f} s; {:.2f} req/s, {:.1f} output tok/s; "
               "TTFT p50 {:.1f} ms; TPOT p50 {:.2f} ms{} → {}\n", spec.name, point.label(), metrics.num_completed,
               metrics.num_failed, metrics.num_aborted, metrics.duration_s, metrics.request_throughput,
               metrics.output_throughput, metrics.ttft_ms.median, metrics.tpot_ms.median, device_idle, o.out);
    if (signal) {
      fmt::print(stderr, "iol: error: interrupted by signal {}: point {} of {} recorded as interrupted in {}; later "
                 "points were not run\n", signal, p + 1, points.size(), o.out);
      throw Interrupted(signal);
    }
    if (metrics.num_failed > 0) {
      std::string first_error;
      int64_t first_index = -1;
      for (const auto& t : traces_of_point)
        if (t.status == bench::RequestStatus::Failed && first_error.empty()) {
          first_error = t.error;
          first_index = t.index;
        }
      if (metrics.num_completed == 0)
        fail("every request failed at {} (recorded in {}); the first error: {}", point.label(), o.out, first_error);
      fmt::print(stderr, "iol bench: first failure: request {}: {}\n", first_index, first_error);
    }
  }
}

// --target URL: the workload over HTTP. The tokenizer and vocabulary come from --model DIR,
// --preset or --tokenizer DIR; --model NAME (not a directory) is only the name sent.
void run_bench_http(BenchOptions o) {
  bench::HttpRunnerOptions http;
  http.target = bench::HttpTarget::parse(o.target);
  http.endpoint = o.endpoint;
  http.api_key = o.api_key.empty() && std::getenv("OPENAI_API_KEY") ? std::getenv("OPENAI_API_KEY") : o.api_key;
  std::string model_name;
  if (!o.model.model_dir.empty() && !std::filesystem::is_directory(o.model.model_dir)) {
    model_name = o.model.model_dir;
    o.model.model_dir.clear();
  } else if (!o.model.model_dir.empty()) {
    model_name = std::filesystem::path(o.model.model_dir).lexically_normal().filename().string();
  }
  bench::WorkloadSpec spec = make_spec(o);
  bench::Slo slo = o.slo.empty() ? bench::Slo{} : bench::Slo::parse(o.slo);
  // The results file is opened and checked before the server is contacted (as in-process).
  std::vector<std::string> inputs = {o.scenario, spec.dataset, o.tokenizer_dir};
  if (!o.model.model_dir.empty()) inputs.push_back(o.model.model_dir + "/config.json");
  const std::string traces_path = bench::traces_path_for(o.out);
  check_output_path(o.out, "--out", inputs, /*appends_records=*/true);
  if (same_file(o.out, traces_path)) throw UsageError(fmt::format("--out {}: names the request-traces file", o.out));
  bench::JsonlAppender results(o.out), traces(traces_path);
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  int64_t vocab_size = 0;
  std::string architecture;
  if (!o.model.model_dir.empty() || !o.model.preset.empty()) {
    model::LoadedModel loaded = model::load_model(o.model.to_source(), /*load_weights=*/false);
    tokenizer = load_tokenizer(o.model, loaded.config);
    vocab_size = loaded.config.vocab_size;
    architecture = loaded.config.architecture;
    if (model_name.empty()) model_name = o.model.preset;
  }
  if (!o.tokenizer_dir.empty()) tokenizer = tokenizer::Tokenizer::from_directory(o.tokenizer_dir);
  if (vocab_size == 0 && tokenizer) vocab_size = static_cast<int64_t>(tokenizer->vocabulary().size());
  if (vocab_size == 0)
    throw UsageError("--target needs the model's vocabulary to draw prompts: pass --model DIR, --preset NAME or --tokenizer DIR");
  const bench::ServedModel served = bench::first_served_model(http.target, http.api_key);
  if (o.model.model_dir.empty() && o.model.preset.empty() && model_name.empty()) model_name = served.id;
  if (model_name.empty() || (!o.model.preset.empty() && served.id != model_name)) model_name = served.id;
  http.model = model_name;
  http.tokenizer = tokenizer.get();
  std::vector<bench::BenchRequest> requests = bench::make_requests(spec, vocab_size, tokenizer.get());
  if (!o.quiet)
    fmt::print(stderr, "iol bench: {} requests to {} ({} endpoint, model '{}', served by {})\n", requests.size(),
               http.target.url(), http.endpoint, model_name, served.owned_by.empty() ? "?" : served.owned_by);
  BenchTarget target;
  target.engine = {{"name", !o.target_name.empty() ? o.target_name : !served.owned_by.empty() ? served.owned_by : "openai-compatible"},
                   {"backend", "remote"},
                   {"model", model_name},
                   {"url", http.target.url()},
                   {"endpoint", http.endpoint},
                   {"levers", {{"batching", "unknown"}, {"kv_layout", "unknown"}, {"prefix_caching", nullptr},
                               {"chunked_prefill", nullptr}, {"quantization", "unknown"}, {"speculative_decoding", "unknown"}}},
                   {"config", {{"block_size", nullptr}, {"max_num_seqs", nullptr}, {"max_num_batched_tokens", nullptr},
                               {"max_model_len", nullptr}}}};
  if (!architecture.empty()) target.engine["architecture"] = architecture;
  target.make_runner = [http] { return std::make_unique<bench::HttpRunner>(http); };
  const auto t0 = std::chrono::steady_clock::now();
  target.now = [t0] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  run_sweep(o, spec, slo, requests, target, nullptr, results, traces);
}

void run_bench(const BenchOptions& o) {
  if (o.list_backends) {
    for (const auto& name : backend::available_backends()) fmt::print("{}\n", name);
    return;
  }
  if (!o.target.empty()) {
    for (const char* flag : {"--ablation", "--export-requests", "--parity-logits", "--parity-requests", "--measure-ceilings"})
      refuse_unless(o, flag, false, "--target measures a server over HTTP; it runs no engine in this process");
    return run_bench_http(o);
  }
  for (const char* flag : {"--endpoint", "--api-key", "--tokenizer", "--target-name"})
    refuse_unless(o, flag, false, "it needs --target URL");
  if (!o.ablation.empty()) return run_ablation(o);
  const bool measuring = o.export_requests.empty() && o.parity_logits.empty();
  if (!o.export_requests.empty() && !o.parity_logits.empty())
    throw UsageError("--export-requests and --parity-logits each write one file and exit: give one of them");
  for (const char* flag : {"--out", "--slo", "--tag", "--measure-ceilings", "--nvml-library"})
    refuse_unless(o, flag, measuring, "--export-requests / --parity-logits measure nothing");
  refuse_unless(o, "--parity-requests", !o.parity_logits.empty(), "it sets how many requests --parity-logits covers");
  bench::WorkloadSpec spec = make_spec(o);
  bench::Slo slo = o.slo.empty() ? bench::Slo{} : bench::Slo::parse(o.slo);
  const model::ModelSource source = o.model.to_source();
  model::LoadedModel loaded = model::load_model(source, /*load_weights=*/false);
  const model::ModelConfig& config = loaded.config;
  const backend::BackendOptions backend_options = o.engine.to_backend_options(config);

  // Every output is opened and checked before anything is measured: a bad --out fails now, not
  // after the sweep; no output may be an input.
  std::vector<std::string> inputs = {o.scenario, spec.dataset};
  if (!o.model.model_dir.empty()) inputs.push_back(o.model.model_dir + "/config.json");
  std::optional<bench::JsonlAppender> results, traces;
  if (!o.export_requests.empty()) check_output_path(o.export_requests, "--export-requests", inputs);
  if (!o.parity_logits.empty()) {
    check_output_path(o.parity_logits, "--parity-logits", inputs);
    check_output_path(o.parity_logits + ".json", "--parity-logits", inputs);
  }
  const std::string traces_path = bench::traces_path_for(o.out);
  if (measuring) {
    check_output_path(o.out, "--out", inputs, /*appends_records=*/true);
    if (same_file(o.out, traces_path)) throw UsageError(fmt::format("--out {}: names the request-traces file", o.out));
    results.emplace(o.out);
    traces.emplace(traces_path);
  }

  // The workload next: bad input fails before a model is loaded onto a device.
  auto tokenizer = load_tokenizer(o.model, config);
  // Before drawing prompts: a fixed or bounded workload that cannot fit fails without allocating it.
  if (spec.prompt_source == "random" || spec.prompt_source == "text" || spec.prompt_source == "copy") {
    const int64_t longest = spec.input_len.upper_bound() + spec.output_len.upper_bound();
    if (longest > backend_options.max_model_len)
      throw UsageError(fmt::format("workload: requests of up to {} + {} tokens exceed --max-model-len {} (shorten "
                                   "--input-len/--output-len or raise --max-model-len)", spec.input_len.upper_bound(),
                                   spec.output_len.upper_bound(), backend_options.max_model_len));
  }
  // Host memory for the requests and their traces (token ids, then one timestamp per output
  // token): refused up front when it cannot fit, instead of a bad_alloc or the OOM killer.
  {
    const int64_t count = checked_sum({spec.num_requests, spec.warmup_requests}, "workload");
    const int64_t per_request = checked_sum({checked_product({spec.input_len.upper_bound(), 4}, "workload"),
                                             checked_product({spec.output_len.upper_bound(), 8}, "workload"), 256},
                                            "workload");
    const int64_t bytes = checked_product({count, per_request}, "workload");
    if (const int64_t physical = physical_memory_bytes(); physical > 0 && bytes > physical / 2)
      throw UsageError(fmt::format("workload: {} requests of up to {} + {} tokens need about {:.1f} GiB of host memory, "
                                   "more than half of this machine's {:.1f} GiB (fewer --num-requests or shorter lengths)",
                                   count, spec.input_len.upper_bound(), spec.output_len.upper_bound(),
                                   static_cast<double>(bytes) / (1 << 30), static_cast<double>(physical) / (1 << 30)));
  }
  std::vector<bench::BenchRequest> requests = bench::make_requests(spec, config.vocab_size, tokenizer.get());
  for (const auto& r : requests)
    if (static_cast<int64_t>(r.prompt_ids.size()) + r.output_len > backend_options.max_model_len)
      fail("workload: a request of {} + {} tokens exceeds --max-model-len {}", r.prompt_ids.size(), r.output_len,
           backend_options.max_model_len);
  if (!o.export_requests.empty()) {
    const nlohmann::json extra = {{"model", loaded.description}, {"vocab_size", config.vocab_size},
                                  {"iol_version", std::string(kVersion)}, {"git_commit", std::string(kGitCommit)}};
    bench::write_request_list(o.export_requests, spec, requests, extra);
    fmt::print(stderr, "iol bench: {} requests of {} written to {}\n", requests.size(), spec.name, o.export_requests);
    return;
  }
  // The draft's backend first, so the target's memory budget counts it (engine_options.hpp);
  // every sweep point's engine gets a proposer on that same draft.
  (void)o.engine.make_proposer(config);
  backend::CreatedBackend created = backend::create_backend(backend_options, source, config);
  backend::Backend& backend = *created.backend;
  engine::EngineConfig engine_config = o.engine.to_config(config, backend.kv_cache_spec());
  if (!o.quiet)
    fmt::print(stderr, "iol bench: {} on {}, loaded in {:.2f} s; KV pool {} blocks of {} tokens ({:.2f} GiB)\n",
               loaded.description, created.description, created.load_seconds, engine_config.num_kv_blocks,
               engine_config.block_size,
               static_cast<double>(backend.kv_cache_spec().bytes_per_block * engine_config.num_kv_blocks) / (1 << 30));

  if (!o.parity_logits.empty()) {
    bench::write_parity_logits(backend, requests, static_cast<size_t>(o.parity_requests),
                               std::min<int64_t>(backend_options.max_num_seqs, 256), o.parity_logits);
    fmt::print(stderr, "iol bench: logits of the first {} prompts written to {}\n", o.parity_requests, o.parity_logits);
    return;
  }
  // Ceilings first, before the engine's timings, on the same device and process.
  nlohmann::json ceilings = nullptr;
  if (o.measure_ceilings) {
    if (auto c = backend.measure_ceilings()) {
      ceilings = {{"read_bytes_per_s", c->read_bytes_per_s}, {"copy_bytes_per_s", c->copy_bytes_per_s},
                  {"bf16_gemm_flops", c->bf16_gemm_flops}, {"stream_bytes", c->stream_bytes}};
      if (!o.quiet)
        fmt::print(stderr, "iol bench: ceilings: read {:.2f} TB/s, copy {:.2f} TB/s, bf16 GEMM 8192³ {:.0f} TFLOP/s\n",
                   c->read_bytes_per_s / 1e12, c->copy_bytes_per_s / 1e12, c->bf16_gemm_flops / 1e12);
    } else {
      fmt::print(stderr, "iol bench: --measure-ceilings: the {} backend cannot measure them; none recorded\n", backend.name());
    }
  }
  std::vector<std::unique_ptr<engine::Engine>> engines;
  BenchTarget target;
  target.engine =
         {{"name", "iol"},
          {"backend", backend.name()},
          {"model", loaded.description},
          {"architecture", config.architecture},
          {"num_parameters", config.num_parameters()},
          {"backend_description", created.description},
          {"load_seconds", created.load_seconds},
          {"weights_dtype", backend.name() == "cuda" ? std::string("BF16") : std::string(dtype_name(source.dummy_dtype.value_or(config.dtype)))},
          {"levers",
           {{"batching", engine::batching_mode_name(engine_config.batching)},
            {"kv_layout", engine::kv_layout_name(engine_config.kv_layout)},
            {"scheduler_policy", engine::scheduler_policy_name(engine_config.scheduler_policy)},
            {"prefix_caching", engine_config.enable_prefix_caching},
            {"chunked_prefill", engine_config.enable_chunked_prefill},
            {"quantization", std::string(quant::scheme_name(o.engine.resolved_quantization()))},
            {"kv_cache_dtype", std::string(quant::kv_cache_dtype_name(o.engine.resolved_kv_cache_dtype()))},
            {"speculative_decoding", engine::speculative_method_name(engine_config.speculative.method)}}},
          {"speculative",
           engine_config.speculative.enabled()
               ? nlohmann::json{{"method", engine::speculative_method_name(engine_config.speculative.method)},
                                {"model", o.engine.speculative_model.empty() ? nlohmann::json(nullptr)
                                                                             : nlohmann::json(o.engine.speculative_model)},
                                {"num_speculative_tokens", engine_config.speculative.num_speculative_tokens},
                                {"disable_by_batch_size", engine_config.speculative.disable_by_batch_size},
                                {"prompt_lookup_min", engine_config.speculative.prompt_lookup_min},
                                {"prompt_lookup_max", engine_config.speculative.prompt_lookup_max},
                                {"forced_acceptance", engine_config.speculative.forced_acceptance >= 0.0
                                                          ? nlohmann::json(engine_config.speculative.forced_acceptance)
                                                          : nlohmann::json(nullptr)}}
               : nlohmann::json(nullptr)},
          {"config",
           {{"block_size", engine_config.block_size},
            {"num_kv_blocks", engine_config.num_kv_blocks},
            {"kv_cache_memory_bytes", backend.kv_cache_spec().bytes_per_block * engine_config.num_kv_blocks},
            {"kv_cache_dtype", std::string(dtype_name(backend.kv_cache_spec().dtype))},
            {"cuda_graphs", backend.name() == "cuda" && !o.engine.no_cuda_graphs},
            {"decode_gemv", backend.name() == "cuda" && !o.engine.no_decode_gemv},
            {"max_num_seqs", engine_config.max_num_seqs},
            {"max_num_batched_tokens", engine_config.max_num_batched_tokens},
            {"max_model_len", engine_config.max_model_len},
            {"threads", static_cast<int64_t>(o.engine.threads)}}}};
  target.make_runner = [&]() -> std::unique_ptr<bench::Runner> {
    // A fresh engine per sweep point: each point starts from an empty KV pool and prefix cache.
    engines.push_back(std::make_unique<engine::Engine>(engine_config, backend, config, nullptr,
                                                       o.engine.make_proposer(config)));
    return std::make_unique<bench::InProcessRunner>(*engines.back());
  };
  const auto t0 = std::chrono::steady_clock::now();
  target.now = [t0] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  run_sweep(o, spec, slo, requests, target, ceilings, *results, *traces);
}

// The lever ablation (ablation_plan.hpp): one bench run per step on the same scenario, records
// tagged with the step, then one Markdown and one HTML report of these records beside --out.
void run_ablation(const BenchOptions& o) {
  if (!o.scenario.empty()) throw UsageError("--ablation takes the scenario itself: drop --scenario");
  if (!o.export_requests.empty() || !o.parity_logits.empty())
    throw UsageError("--ablation runs the workload: it cannot be combined with --export-requests or --parity-logits");
  make_spec([&] { BenchOptions c = o; c.scenario = o.ablation; return c; }());  // a bad scenario fails before any run
  const std::string backend_name = o.engine.backend == "auto" ? backend::available_backends().front() : o.engine.backend;
  const bool torch_present = std::system("python3 -c 'import sys, torch, transformers; sys.exit(0 if torch.cuda.is_available() else 1)' "
                                         ">/dev/null 2>&1") == 0;
  const std::string pytorch_reason =
      torch_present ? "torch with CUDA is present, but --ablation does not drive it yet: run baselines/pytorch/run_baseline.py on "
                      "`iol bench --export-requests` (docs/baseline.md) and render both results files together"
                    : "torch with CUDA is not importable here (baselines/pytorch needs it)";
  const AblationPlan plan = plan_ablation(o.engine, backend_name, pytorch_reason);
  const std::string id = make_run_id();
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& [lever, reason] : plan.skipped) skipped.push_back({{"lever", lever}, {"reason", reason}});
  const auto start = std::chrono::steady_clock::now();
  for (size_t k = 0; k < plan.steps.size(); ++k) {
    const AblationStepPlan& step = plan.steps[k];
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!o.quiet)
      fmt::print(stderr, "iol bench --ablation: step {}/{} {}{}\n", k + 1, plan.steps.size(), step.step,
                 k == 0 ? std::string() : fmt::format(", {:.0f} s elapsed, ETA {:.0f} s", elapsed,
                                                      elapsed / static_cast<double>(k) * static_cast<double>(plan.steps.size() - k)));
    BenchOptions s = o;
    s.ablation.clear();
    s.scenario = o.ablation;
    s.engine = step.engine;
    s.engine.backend = backend_name;
    s.tag = o.tag.empty() ? "ablation" : o.tag;
    s.ablation_record = {{"id", id}, {"step", step.step}, {"lever", step.lever.empty() ? nlohmann::json(nullptr) : nlohmann::json(step.lever)},
                         {"order", static_cast<int64_t>(k)}, {"skipped", skipped}};
    run_bench(s);
  }
  std::vector<nlohmann::json> records;
  for (auto& r : bench::read_jsonl(o.out))
    if (r.contains("ablation") && r["ablation"].value("id", "") == id) records.push_back(std::move(r));
  const std::filesystem::path base = std::filesystem::path(o.out).parent_path() / ("ablation-" + id);
  const report::PriceTable prices = report::load_price_table("");
  std::string md = "# Lever ablation\n\n" + report::ablation_markdown(report::ablation_views(records));
  md += "## Cost\n\n" + report::cost_markdown(report::cost_table(prices, records, "", report::Traffic{}, ""), prices);
  for (const auto& [path, text] : {std::pair{base.string() + ".md", md},
                                   std::pair{base.string() + ".html", report::html_report(records, prices, {"", o.out})}}) {
    std::ofstream file(path + ".tmp", std::ios::trunc);
    file << text;
    if (!file.flush()) fail("{}: cannot write the ablation report", path);
    file.close();
    std::filesystem::rename(path + ".tmp", path);
  }
  for (const auto& [lever, reason] : plan.skipped) fmt::print(stderr, "iol bench --ablation: skipped {}: {}\n", lever, reason);
  fmt::print(stderr, "iol bench --ablation: {} steps → {}; report {}.md and {}.html\n", plan.steps.size(), o.out, base.string(), base.string());
}

}  // namespace

void add_bench_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* command = app.add_subcommand("bench", "Benchmark a workload; append results to a .jsonl file");
  command->footer(
      "Examples:\n"
      "  iol bench --preset tiny --scenario bench/scenarios/default-cpu.yaml --out reports/results.jsonl\n"
      "  iol bench --preset tiny --num-requests 32 --input-len 64 --output-len 32 --arrival closed --concurrency 1,4,16\n"
      "  iol bench --preset tiny --arrival poisson --request-rate 2,8 --slo ttft_ms=500,tpot_ms=50 --batching static\n"
      "  iol bench --target http://127.0.0.1:8000 --model models/tiny --arrival closed --concurrency 64\n"
      "  iol report reports/results.jsonl --out reports/report.md");
  options->model.add_to(*command);
  options->engine.add_to(*command);
  command
      ->add_option("--speculative-forced-acceptance", options->engine.speculative_forced_acceptance,
                   "Benchmark only: accept each proposal with this probability whatever the target says, to measure "
                   "speculation's cost at a chosen acceptance rate; outputs are then not the model's (records say so)")
      ->check(real_range(0.0, 1.0));
  command->add_option("--scenario", options->scenario, "Workload file (bench/scenarios/*.yaml); flags override it");
  command->add_option("--num-requests", options->num_requests, "Measured requests")->check(int_range(1, bench::kMaxNumRequests));
  command->add_option("--warmup-requests", options->warmup_requests, "Requests sent first and excluded from metrics")
      ->check(int_range(0, bench::kMaxNumRequests));
  command->add_option("--input-len", options->input_len, "Fixed prompt length in tokens")->check(int_range(1, model::kMaxModelLen));
  command->add_option("--output-len", options->output_len, "Fixed output length in tokens")->check(int_range(1, model::kMaxModelLen));
  command->add_option("--prompts", options->prompts, "random | text | copy | sharegpt | jsonl");
  command->add_option("--dataset", options->dataset, "ShareGPT JSON or {prompt, output_len} jsonl file (with --prompts)");
  command->add_option("--arrival", options->arrival, "offline | closed | poisson");
  command->add_option("--concurrency", options->concurrency, "Closed loop: requests in flight (list: a sweep)")
      ->delimiter(',')
      ->check(int_range(1, bench::kMaxConcurrency));
  command->add_option("--request-rate", options->request_rate, "Poisson: requests per second (list: a sweep)")
      ->delimiter(',')
      ->check(real_range(bench::kMinRequestRate, bench::kMaxRequestRate));
  command->add_option("--burstiness", options->burstiness, "Gamma shape of inter-arrival gaps (1 = Poisson; with --arrival poisson)")
      ->check(real_range(bench::kMinBurstiness, bench::kMaxBurstiness));
  command->add_option("--seed", options->seed, "Workload seed")->check(int_range(0, std::numeric_limits<int64_t>::max()));
  command->add_option("--slo", options->slo, "Goodput SLOs, e.g. ttft_ms=200,tpot_ms=50,e2e_ms=5000");
  command->add_option("--out", options->out, "Results file (appended)")->capture_default_str();
  command->add_option("--export-requests", options->export_requests,
                      "Write the exact request list (JSONL, docs/baseline.md) for another runner and exit");
  command->add_option("--parity-logits", options->parity_logits,
                      "Write the fp32 logits of every prompt position of the first requests (the parity gate) and exit");
  command->add_option("--parity-requests", options->parity_requests, "Requests --parity-logits covers")
      ->check(int_range(1, bench::kMaxNumRequests))
      ->capture_default_str();
  command->add_option("--tag", options->tag, "Free-form label stored in the records");
  command->add_option("--nvml-library", options->nvml_library, "NVML library to dlopen")->capture_default_str();
  command->add_flag("--quiet", options->quiet, "No progress on stderr");
  command->add_flag("--measure-ceilings", options->measure_ceilings,
                    "Measure the device's read/copy bandwidth and BF16 GEMM peak first and store them in the records");
  command->add_option("--ablation", options->ablation,
                      "Run the lever ablation on this scenario: all levers off, each on alone, all on (one report)");
  command->add_flag("--list-backends", options->list_backends, "Print the backends this build can run and exit");
  options->given = [command](const char* flag) { return command->get_option(flag)->count() > 0; };
  command->add_option("--target", options->target,
                      "Benchmark an OpenAI-compatible server at this URL (e.g. http://127.0.0.1:8000) instead of the "
                      "in-process engine; --model NAME is then the model name sent (a directory: its tokenizer too)");
  command->add_option("--endpoint", options->endpoint, "--target: completions | chat")->capture_default_str();
  command->add_option("--api-key", options->api_key, "--target: Bearer key (default: the OPENAI_API_KEY environment variable)");
  command->add_option("--tokenizer", options->tokenizer_dir, "--target: tokenizer directory for prompts and token counts");
  command->add_option("--target-name", options->target_name,
                      "--target: engine name in the records (default: the server's owned_by, e.g. iol or vllm)");
  command->callback([options, &runner] { runner = [options] { run_bench(*options); }; });
}

}  // namespace iol::cli
