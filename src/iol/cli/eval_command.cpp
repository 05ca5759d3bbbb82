// iol eval --compare-to bf16: the accuracy a quantization scheme costs (docs/quantization.md,
// "Accuracy"). The same model is loaded twice, unquantized (the reference) and with the given
// --quantization / --kv-cache-dtype, on the same backend; over windows of a text file tokenized by
// the model's tokenizer, teacher-forced, both sides' logits of every position are compared (KL
// divergence, top-1 agreement, perplexity); then a few prompts are decoded greedily by both and
// the tokens before their outputs first differ are counted.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/backend/backend_factory.hpp"
#include "iol/bench/accuracy.hpp"
#include "iol/bench/parity_logits.hpp"
#include "iol/cli/commands.hpp"
#include "iol/cli/engine_options.hpp"
#include "iol/cli/model_options.hpp"
#include "iol/cli/numeric_flags.hpp"
#include "iol/cli/output_file.hpp"
#include "iol/cli/tokenizer_loading.hpp"
#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"
#include "iol/engine/engine.hpp"
#include "iol/engine/llm.hpp"
#include "iol/git_commit.hpp"
#include "iol/quant/quant_scheme.hpp"

namespace iol::cli {
namespace {

struct EvalOptions {
  ModelOptions model;
  EngineOptions engine;
  std::string compare_to;
  std::string text;
  int64_t window = 256;
  int64_t max_windows = 16;
  int64_t greedy_prompts = 8;
  int64_t greedy_tokens = 64;
  bool json = false;
};

void run_eval(EvalOptions& o) {
  if (o.compare_to != "bf16")
    throw UsageError(fmt::format("--compare-to must be bf16 (the unquantized model; got '{}')", o.compare_to));
  if (o.text.empty()) throw UsageError("--text FILE is required: the text the models are compared on");
  const quant::QuantScheme scheme = o.engine.resolved_quantization();
  const quant::KvCacheDtype kv_dtype = o.engine.resolved_kv_cache_dtype();
  const std::string text = read_text_file(o.text);  // bad input fails before a model is loaded

  const model::ModelSource source = o.model.to_source();
  const model::LoadedModel loaded = model::load_model(source, /*load_weights=*/false);
  const model::ModelConfig& config = loaded.config;
  auto tokenizer = load_tokenizer(o.model, config);
  if (!tokenizer) fail("{}: no tokenizer.json, so --text cannot be tokenized", loaded.description);
  const std::vector<int32_t> ids = tokenizer->encode(text, /*add_special_tokens=*/true);
  const int64_t window = std::min<int64_t>(o.window, o.engine.resolved_max_model_len(config));
  const int64_t windows = std::min<int64_t>(o.max_windows, static_cast<int64_t>(ids.size()) / window);
  if (windows < 1)
    fail("{}: {} tokens, fewer than one window of {} (shorten --window or give more text)", o.text, ids.size(), window);

  // Two backends of the same weights; on cuda each gets a small KV pool so both fit beside each other.
  backend::BackendOptions candidate_options = o.engine.to_backend_options(config);
  if (candidate_options.kv_cache_memory == 0 && o.engine.resolved_backend() == "cuda")
    candidate_options.kv_cache_memory = int64_t{1} << 30;
  backend::BackendOptions reference_options = candidate_options;
  reference_options.quantization = quant::QuantScheme::None;
  reference_options.kv_cache_dtype = quant::KvCacheDtype::Auto;
  backend::CreatedBackend reference = backend::create_backend(reference_options, source, config);
  backend::CreatedBackend candidate = backend::create_backend(candidate_options, source, config);

  // Teacher-forced: position t's logits against the token at t + 1 of the same window.
  const int64_t rows_per_forward = std::max<int64_t>(1, std::min<int64_t>(o.engine.resolved_max_num_batched_tokens(), window));
  const size_t vocab = static_cast<size_t>(config.vocab_size);
  bench::AccuracyAccumulator accuracy;
  for (int64_t w = 0; w < windows; ++w) {
    const std::vector<int32_t> tokens(ids.begin() + w * window, ids.begin() + (w + 1) * window);
    const std::vector<float> ref = bench::prompt_logits(*reference.backend, tokens, rows_per_forward);
    const std::vector<float> cand = bench::prompt_logits(*candidate.backend, tokens, rows_per_forward);
    for (size_t t = 0; t + 1 < tokens.size(); ++t)
      accuracy.add(std::span<const float>(ref).subspan(t * vocab, vocab), std::span<const float>(cand).subspan(t * vocab, vocab),
                   tokens[t + 1]);
  }
  const bench::AccuracySummary summary = accuracy.summary();

  // Greedy: the first quarter of each window (at least 1 token) as a prompt, both models decoding.
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t w = 0; w < std::min(windows, o.greedy_prompts); ++w)
    prompts.emplace_back(ids.begin() + w * window, ids.begin() + w * window + std::max<int64_t>(1, window / 4));
  sampling::SamplingParams greedy;
  greedy.temperature = 0.0f;
  greedy.ignore_eos = true;
  greedy.max_tokens = static_cast<int32_t>(
      std::min<int64_t>(o.greedy_tokens, o.engine.resolved_max_model_len(config) - std::max<int64_t>(1, window / 4)));
  const auto decode = [&](backend::Backend& backend) {
    const engine::EngineConfig ec = o.engine.to_config(config, backend.kv_cache_spec());
    engine::Engine engine(ec, backend, config, &tokenizer->vocabulary());
    return engine::generate(engine, prompts, {greedy});
  };
  double divergence = 0;
  if (!prompts.empty() && greedy.max_tokens > 0) {
    const auto a = decode(*reference.backend), b = decode(*candidate.backend);
    for (size_t i = 0; i < a.size(); ++i)
      divergence += static_cast<double>(bench::tokens_before_divergence(a[i].output_ids, b[i].output_ids)) /
                    static_cast<double>(a.size());
  }

  const bool dummy = model::uses_dummy_weights(source);
  nlohmann::json out = summary.to_json();
  out["model"] = loaded.description;
  out["backend"] = candidate.description;
  out["quantization"] = std::string(quant::scheme_name(scheme));
  out["kv_cache_dtype"] = std::string(quant::kv_cache_dtype_name(kv_dtype));
  out["compare_to"] = "bf16";
  out["text"] = o.text;
  out["window"] = window;
  out["windows"] = windows;
  out["greedy_prompts"] = prompts.size();
  out["greedy_tokens"] = greedy.max_tokens;
  out["greedy_tokens_before_divergence"] = divergence;
  out["dummy_weights"] = dummy;
  out["git_commit"] = std::string(kGitCommit);
  out["date"] = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::time(nullptr)));
  if (o.json) {
    fmt::print("{}\n", out.dump());
    return;
  }
  fmt::print("iol eval: {} ({}, KV {}) vs bf16 on {}, {} windows of {} tokens ({} positions)\n", loaded.description,
             quant::scheme_name(scheme), quant::kv_cache_dtype_name(kv_dtype), o.text, windows, window, summary.positions);
  fmt::print("  KL(bf16 || candidate) mean {:.3g} nats, p99 {:.3g}, max {:.3g}\n", summary.kl_mean, summary.kl_p99,
             summary.kl_max);
  fmt::print("  top-1 agreement {:.4f}\n", summary.top1_agreement);
  fmt::print("  perplexity {:.4f} → {:.4f} ({:+.3f}%)\n", summary.perplexity_reference, summary.perplexity_candidate,
             100 * summary.perplexity_change);
  fmt::print("  greedy: {:.1f} of {} tokens before the first divergence (mean over {} prompts)\n", divergence,
             greedy.max_tokens, prompts.size());
  if (dummy) fmt::print("  dummy weights: these figures check the kernels, they say nothing about accuracy\n");
}

}  // namespace

void add_eval_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<EvalOptions>();
  CLI::App* command = app.add_subcommand(
      "eval", "Accuracy of --quantization / --kv-cache-dtype against the unquantized model, on a text file");
  command->footer(
      "Example:\n"
      "  iol eval --model DIR --quantization fp8 --compare-to bf16 --text heldout.txt\n"
      "Teacher-forced KL divergence (mean, p99), top-1 agreement and perplexity over windows of the text,\n"
      "then the greedy tokens produced before the two models' outputs differ (docs/quantization.md).");
  options->model.add_to(*command);
  options->engine.add_to(*command);
  command->add_option("--compare-to", options->compare_to, "The reference: bf16 (the unquantized model)")->required();
  command->add_option("--text", options->text, "Text file the models are compared on (the model's tokenizer)")->required();
  command->add_option("--window", options->window, "Tokens per teacher-forced window")
      ->check(int_range(2, model::kMaxModelLen))
      ->capture_default_str();
  command->add_option("--max-windows", options->max_windows, "Windows compared at most")
      ->check(int_range(1, 1 << 20))
      ->capture_default_str();
  command->add_option("--greedy-prompts", options->greedy_prompts, "Prompts decoded greedily by both (0: none)")
      ->check(int_range(0, 1 << 16))
      ->capture_default_str();
  command->add_option("--greedy-tokens", options->greedy_tokens, "Greedy tokens per prompt")
      ->check(int_range(1, model::kMaxModelLen))
      ->capture_default_str();
  command->add_flag("--json", options->json, "One JSON object instead of the table");
  command->callback([&runner, options] { runner = [options] { run_eval(*options); }; });
}

}  // namespace iol::cli
