// iol generate: stream a completion from a model on the CPU reference backend.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "iol/backend/backend_factory.hpp"
#include "iol/cli/chat_options.hpp"
#include "iol/cli/commands.hpp"
#include "iol/cli/model_options.hpp"
#include "iol/cli/numeric_flags.hpp"
#include "iol/cli/parse_ids.hpp"
#include "iol/cli/tokenizer_loading.hpp"
#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"
#include "iol/cli/engine_options.hpp"
#include "iol/engine/engine.hpp"
#include "iol/engine/llm.hpp"
#include "iol/sampling/sampling_row.hpp"

namespace iol::cli {

namespace {

struct GenerateOptions {
  ModelOptions model;
  EngineOptions engine;
  std::string prompt;
  std::string prompt_ids;
  std::string prompts_file;
  bool output_ids = false;
  bool json = false;
  sampling::SamplingParams sampling;
  int64_t seed = -1;
  std::string stop_token_ids;
  ChatOptions chat;
};

// One prompt per line as comma-separated token ids; blank lines and '#' comments are skipped.
std::vector<std::vector<int32_t>> read_prompts_file(const std::string& path) {
  std::istringstream in(read_text_file(path));
  std::vector<std::vector<int32_t>> prompts;
  std::string line;
  for (int line_number = 1; std::getline(in, line); ++line_number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[line.find_first_not_of(" \t")] == '#') continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    try {
      prompts.push_back(parse_id_list(line, "prompt"));
    } catch (const Error& e) {
      fail("{}:{}: {}", path, line_number, e.what());
    }
  }
  if (prompts.empty()) fail("{}: no prompts (one comma-separated id list per line)", path);
  return prompts;
}

nlohmann::json completion_json(const engine::Completion& c) {
  nlohmann::json logprobs = nlohmann::json::array();
  for (const auto& token : c.tokens) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [id, logprob] : token.top_logprobs) top.push_back({{"id", id}, {"logprob", logprob}});
    logprobs.push_back({{"id", token.token}, {"logprob", token.logprob}, {"top", top}});
  }
  const auto& t = c.timestamps;
  return {{"sample_index", c.sample_index},
          {"prompt_ids", c.prompt_ids},
          {"output_ids", c.output_ids},
          {"text", c.text},
          {"finish_reason", engine::finish_reason_name(c.finish_reason)},
          {"ttft_ms", (t.first_token - t.arrival) * 1e3},
          {"e2e_ms", (t.finished - t.arrival) * 1e3},
          {"cached_prompt_tokens", c.num_cached_prompt_tokens},
          {"preemptions", c.num_preemptions},
          {"logprobs", logprobs}};
}

void run_generate(GenerateOptions& o) {
  const int sources = !o.prompt.empty() + !o.prompt_ids.empty() + !o.prompts_file.empty() + o.chat.active();
  if (sources > 1) throw UsageError("give one of --prompt, --messages, --prompt-ids or --prompts-file");
  if (sources == 0) throw UsageError("no prompt: pass --prompt TEXT, --messages FILE, --prompt-ids 1,2,3 or --prompts-file FILE");
  const std::string chat_prompt = o.chat.render(o.model.model_dir);  // empty without --messages
  std::vector<std::vector<int32_t>> prompts;
  if (!o.prompt_ids.empty()) prompts.push_back(parse_id_list(o.prompt_ids, "--prompt-ids"));
  if (!o.prompts_file.empty()) prompts = read_prompts_file(o.prompts_file);
  if (o.seed >= 0) o.sampling.seed = static_cast<uint64_t>(o.seed);
  if (!o.stop_token_ids.empty()) o.sampling.stop_token_ids = parse_id_list(o.stop_token_ids, "--stop-token-ids");

  const model::ModelSource source = o.model.to_source();
  model::LoadedModel loaded = model::load_model(source, /*load_weights=*/false);
  const model::ModelConfig& config = loaded.config;
  auto tokenizer = load_tokenizer(o.model, config);
  if (!o.prompt.empty()) {
    if (!tokenizer) fail("{}: no tokenizer.json, so text prompts cannot be encoded (use --prompt-ids)", o.model.model_dir);
    prompts.push_back(tokenizer->encode(o.prompt, /*add_special_tokens=*/true));
  }
  if (o.chat.active()) {
    if (!tokenizer) fail("{}: no tokenizer.json, so a chat cannot be encoded", o.model.model_dir);
    prompts.push_back(tokenizer->encode(chat_prompt, /*add_special_tokens=*/false));  // the template wrote BOS
  }
  std::unique_ptr<spec::Proposer> proposer = o.engine.make_proposer(config);  // before the target (engine_options.hpp)
  backend::CreatedBackend created = backend::create_backend(o.engine.to_backend_options(config), source, config);
  engine::EngineConfig engine_config = o.engine.to_config(config, created.backend->kv_cache_spec());
  engine::Engine engine(engine_config, *created.backend, config, tokenizer ? &tokenizer->vocabulary() : nullptr,
                        std::move(proposer));

  // A single prompt streams its text as it is generated; several print when done, in order.
  const bool stream_text = prompts.size() == 1 && o.sampling.n == 1 && !o.output_ids && !o.json;
  const double start = engine.now();
  std::vector<engine::Completion> completions =
      engine::generate(engine, prompts, {o.sampling}, [&](const engine::RequestOutput& out) {
        if (stream_text && !out.new_text.empty()) {
          std::fwrite(out.new_text.data(), 1, out.new_text.size(), stdout);
          std::fflush(stdout);
        }
      });
  const double elapsed = engine.now() - start;

  if (stream_text) std::fputc('\n', stdout);
  for (const auto& c : completions) {
    if (o.json) fmt::print("{}\n", completion_json(c).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    else if (o.output_ids) fmt::print("{}\n", fmt::join(c.output_ids, ","));
    else if (!stream_text) fmt::print("{}\n", c.text);
  }
  for (const auto& c : completions)
    if (c.finish_reason == engine::FinishReason::Error) fail("{}", c.error);
  size_t output_tokens = 0;
  for (const auto& c : completions) output_tokens += c.output_ids.size();
  const engine::EngineStats stats = engine.stats();
  if (engine_config.speculative.enabled()) {
    const engine::SpeculativeStats& s = stats.speculative;
    fmt::print(stderr, "iol generate: speculative ({}, k = {}): {} proposed, {} accepted ({:.1f}%), {:.2f} accepted per "
               "speculative step, proposer {:.1f}% of step time\n",
               engine::speculative_method_name(engine_config.speculative.method),
               engine_config.speculative.num_speculative_tokens, s.num_proposed_tokens, s.num_accepted_tokens,
               100.0 * s.acceptance_rate(), s.mean_accepted_length(), 100.0 * s.draft_time_share());
  }
  if (completions.size() == 1) {
    const engine::Completion& c = completions[0];
    const double ttft = c.timestamps.first_token - c.timestamps.arrival;
    const double decode = c.timestamps.finished - c.timestamps.first_token;
    fmt::print(stderr, "iol generate: {} prompt + {} output tokens in {:.3f} s; TTFT {:.1f} ms; decode {:.1f} tok/s; "
               "finish {}; {}\n", c.prompt_ids.size(), c.output_ids.size(), elapsed, ttft * 1e3,
               c.output_ids.size() > 1 && decode > 0 ? static_cast<double>(c.output_ids.size() - 1) / decode : 0.0,
               engine::finish_reason_name(c.finish_reason), loaded.description);
  } else {
    fmt::print(stderr, "iol generate: {} requests ({} samples), {} output tokens in {:.3f} s ({:.1f} output tok/s); peak {} running, "
               "peak {} of {} KV blocks; {} preemptions; prefix-cache hit rate {:.1f}%; batching {}, kv-layout {}; {}\n",
               prompts.size(), completions.size(), output_tokens, elapsed, elapsed > 0 ? static_cast<double>(output_tokens) / elapsed : 0.0,
               stats.peak_num_running, stats.peak_used_blocks, stats.blocks.num_blocks, stats.num_preemptions,
               100.0 * stats.blocks.prefix_hit_rate(), engine::batching_mode_name(engine_config.batching),
               engine::kv_layout_name(engine_config.kv_layout), loaded.description);
  }
}

}  // namespace

void add_generate_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* command = app.add_subcommand("generate", "Generate a completion (CPU reference backend)");
  command->footer(
      "Examples:\n"
      "  iol generate --model models/tiny --prompt 'Hello' --max-tokens 32 --temperature 0\n"
      "  iol generate --preset tiny --prompt-ids 256,72,101,108,108,111 --max-tokens 32 --temperature 0\n"
      "  iol generate --model models/tiny --prompt-ids 256,1,2 --output-ids --temperature 0.8 --top-p 0.9 --seed 7\n"
      "  iol generate --model models/tiny --prompt-ids 256,3 --json --logprobs 5 --max-tokens 4\n"
      "  iol generate --model models/llama3 --messages chat.json --max-tokens 64\n"
      "  iol generate --preset tiny --prompts-file prompts.txt --output-ids --batching static --kv-layout contiguous");
  options->model.add_to(*command);
  command->add_option("--prompt", options->prompt, "Text prompt, encoded with the model's tokenizer.json (BOS as the tokenizer adds it)");
  command->add_option("--prompt-ids", options->prompt_ids, "Prompt as comma-separated token ids, e.g. 1,2,3");
  command->add_option("--prompts-file", options->prompts_file,
                      "File with one prompt per line (comma-separated ids): run as one in-flight batch");
  options->chat.add_to(*command);
  command->add_flag("--output-ids", options->output_ids, "Print the generated ids on one line instead of text");
  command->add_flag("--json", options->json, "Print one JSON object: ids, text, logprobs, finish reason, timings");
  auto& s = options->sampling;
  command->add_option("--max-tokens", s.max_tokens, "Tokens to generate at most")
      ->check(int_range(1, model::kMaxModelLen))
      ->capture_default_str();
  command->add_option("--min-tokens", s.min_tokens, "EOS/stop tokens are masked before this many")
      ->check(int_range(0, model::kMaxModelLen))
      ->capture_default_str();
  command->add_option("--temperature", s.temperature, "0 = greedy")->check(real_range(0.0, 100.0))->capture_default_str();
  command->add_option("--top-k", s.top_k, "Keep the k most likely tokens (0 = all)")
      ->check(int_range(-1, model::kMaxVocabSize))
      ->capture_default_str();
  command->add_option("--top-p", s.top_p, "Nucleus sampling mass")
      ->check(real_range(0.0, 1.0, /*min_exclusive=*/true))
      ->capture_default_str();
  command->add_option("--min-p", s.min_p, "Drop tokens below min_p × p_max")->check(real_range(0.0, 1.0))->capture_default_str();
  command->add_option("--repetition-penalty", s.repetition_penalty, "> 1 discourages repeats")
      ->check(real_range(0.0, 100.0, /*min_exclusive=*/true))
      ->capture_default_str();
  command->add_option("--presence-penalty", s.presence_penalty, "[-2, 2]")->check(real_range(-2.0, 2.0))->capture_default_str();
  command->add_option("--frequency-penalty", s.frequency_penalty, "[-2, 2]")->check(real_range(-2.0, 2.0))->capture_default_str();
  command->add_option("--seed", options->seed, "Sampling seed (same seed, same output); -1 = random")
      ->check(int_range(-1, std::numeric_limits<int64_t>::max()))
      ->capture_default_str();
  command->add_option("--stop", s.stop, "Stop string (repeatable); not included in the output");
  command->add_option("--stop-token-ids", options->stop_token_ids, "Comma-separated ids that end generation");
  command->add_flag("--ignore-eos", s.ignore_eos, "Keep generating past EOS");
  command->add_option("--logprobs", s.logprobs, "Top-n logprobs per token (with --json)")
      ->check(int_range(0, sampling::kMaxLogprobs))
      ->capture_default_str();
  command->add_option("--n", s.n, "Parallel samples per prompt (share the prompt's KV blocks); one output line each")
      ->check(int_range(1, sampling::kMaxParallelSamples))
      ->capture_default_str();
  options->engine.add_to(*command);
  command->callback([options, &runner] { runner = [options] { run_generate(*options); }; });
}

}  // namespace iol::cli
