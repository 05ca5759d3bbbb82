// iol generate: stream a completion from a model on the CPU reference backend.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "iol/backend/cpu/cpu_backend.hpp"
#include "iol/cli/commands.hpp"
#include "iol/cli/model_options.hpp"
#include "iol/cli/parse_ids.hpp"
#include "iol/core/error.hpp"
#include "iol/engine/generator.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol::cli {

namespace {

struct GenerateOptions {
  ModelOptions model;
  std::string prompt;
  std::string prompt_ids;
  bool output_ids = false;
  bool json = false;
  sampling::SamplingParams sampling;
  int64_t seed = -1;
  std::string stop_token_ids;
  int64_t max_model_len = 0;
  int64_t block_size = 16;
  size_t threads = 0;
};

// The vocabulary for decoding: the model directory's tokenizer.json, or the synthetic one of a preset.
std::unique_ptr<tokenizer::Vocabulary> load_vocabulary(const ModelOptions& options, const model::ModelConfig& config) {
  if (!options.model_dir.empty()) {
    auto path = std::filesystem::path(options.model_dir) / "tokenizer.json";
    if (!std::filesystem::exists(path)) return nullptr;
    return std::make_unique<tokenizer::Vocabulary>(tokenizer::Vocabulary::from_file(path.string()));
  }
  int64_t bos = config.bos_token_id.value_or(0);
  int64_t eos = config.eos_token_ids.empty() ? bos : config.eos_token_ids.front();
  auto files = tokenizer::make_byte_level_tokenizer(config.vocab_size, bos, eos);
  return std::make_unique<tokenizer::Vocabulary>(tokenizer::Vocabulary::from_json(files.first, "synthetic tokenizer"));
}

void run_generate(GenerateOptions& o) {
  if (!o.prompt.empty() && !o.prompt_ids.empty()) throw UsageError("give either --prompt or --prompt-ids, not both");
  if (o.prompt_ids.empty()) {
    if (!o.prompt.empty())
      throw UsageError("text prompts need the tokenizer, which is not implemented yet: pass token ids with --prompt-ids");
    throw UsageError("no prompt: pass --prompt-ids 1,2,3");
  }
  std::vector<int32_t> prompt = parse_id_list(o.prompt_ids, "--prompt-ids");
  if (o.seed >= 0) o.sampling.seed = static_cast<uint64_t>(o.seed);
  if (!o.stop_token_ids.empty()) o.sampling.stop_token_ids = parse_id_list(o.stop_token_ids, "--stop-token-ids");

  model::LoadedModel loaded = model::load_model(o.model.to_source());
  const model::ModelConfig& config = loaded.config;
  o.sampling.validate(config.vocab_size);
  int64_t max_len = o.max_model_len > 0 ? o.max_model_len
                                         : std::min<int64_t>(config.max_position_embeddings,
                                                             static_cast<int64_t>(prompt.size()) + o.sampling.max_tokens);
  if (o.block_size <= 0) throw UsageError("--block-size must be positive");
  int64_t num_blocks = (max_len + o.block_size - 1) / o.block_size;
  backend::cpu::CpuBackend backend(config, loaded.weights, num_blocks, o.block_size, o.threads);
  auto vocabulary = load_vocabulary(o.model, config);
  engine::Generator generator(backend, config, vocabulary.get());

  const bool stream_text = !o.output_ids && !o.json;
  engine::GenerationResult result = generator.generate(prompt, o.sampling, [&](std::string_view text) {
    if (stream_text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
  });
  if (stream_text) std::fputc('\n', stdout);
  if (o.output_ids) fmt::print("{}\n", fmt::join(result.output_ids, ","));
  if (o.json) {
    nlohmann::json out = {{"model", loaded.description},
                          {"prompt_ids", prompt},
                          {"output_ids", result.output_ids},
                          {"text", result.text},
                          {"finish_reason", engine::finish_reason_name(result.finish_reason)},
                          {"ttft_ms", result.ttft_seconds * 1e3},
                          {"total_ms", result.total_seconds * 1e3}};
    nlohmann::json logprobs = nlohmann::json::array();
    for (const auto& token : result.tokens) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [id, logprob] : token.top_logprobs) top.push_back({{"id", id}, {"logprob", logprob}});
      logprobs.push_back({{"id", token.token}, {"logprob", token.logprob}, {"top", top}});
    }
    out["logprobs"] = logprobs;
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  const double decode_seconds = result.total_seconds - result.ttft_seconds;
  const size_t n = result.output_ids.size();
  fmt::print(stderr, "iol generate: {} prompt + {} output tokens in {:.3f} s; TTFT {:.1f} ms; decode {:.1f} tok/s; finish {}; {}\n",
             prompt.size(), n, result.total_seconds, result.ttft_seconds * 1e3,
             n > 1 && decode_seconds > 0 ? static_cast<double>(n - 1) / decode_seconds : 0.0,
             engine::finish_reason_name(result.finish_reason), loaded.description);
}

}  // namespace

void add_generate_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* command = app.add_subcommand("generate", "Generate a completion (CPU reference backend)");
  command->footer(
      "Examples:\n"
      "  iol generate --preset tiny --prompt-ids 256,72,101,108,108,111 --max-tokens 32 --temperature 0\n"
      "  iol generate --model models/tiny --prompt-ids 256,1,2 --output-ids --temperature 0.8 --top-p 0.9 --seed 7\n"
      "  iol generate --model models/tiny --prompt-ids 256,3 --json --logprobs 5 --max-tokens 4");
  options->model.add_to(*command);
  command->add_option("--prompt", options->prompt, "Text prompt (needs the tokenizer; not implemented yet)");
  command->add_option("--prompt-ids", options->prompt_ids, "Prompt as comma-separated token ids, e.g. 1,2,3");
  command->add_flag("--output-ids", options->output_ids, "Print the generated ids on one line instead of text");
  command->add_flag("--json", options->json, "Print one JSON object: ids, text, logprobs, finish reason, timings");
  auto& s = options->sampling;
  command->add_option("--max-tokens", s.max_tokens, "Tokens to generate at most")->capture_default_str();
  command->add_option("--min-tokens", s.min_tokens, "EOS/stop tokens are masked before this many")->capture_default_str();
  command->add_option("--temperature", s.temperature, "0 = greedy")->capture_default_str();
  command->add_option("--top-k", s.top_k, "Keep the k most likely tokens (0 = all)")->capture_default_str();
  command->add_option("--top-p", s.top_p, "Nucleus sampling mass")->capture_default_str();
  command->add_option("--min-p", s.min_p, "Drop tokens below min_p × p_max")->capture_default_str();
  command->add_option("--repetition-penalty", s.repetition_penalty, "> 1 discourages repeats")->capture_default_str();
  command->add_option("--presence-penalty", s.presence_penalty, "[-2, 2]")->capture_default_str();
  command->add_option("--frequency-penalty", s.frequency_penalty, "[-2, 2]")->capture_default_str();
  command->add_option("--seed", options->seed, "Sampling seed (same seed, same output); -1 = random")
      ->capture_default_str();
  command->add_option("--stop", s.stop, "Stop string (repeatable); not included in the output");
  command->add_option("--stop-token-ids", options->stop_token_ids, "Comma-separated ids that end generation");
  command->add_flag("--ignore-eos", s.ignore_eos, "Keep generating past EOS");
  command->add_option("--logprobs", s.logprobs, "Top-n logprobs per token (with --json)")->capture_default_str();
  command->add_option("--max-model-len", options->max_model_len, "KV capacity in tokens (default: prompt + max tokens)");
  command->add_option("--block-size", options->block_size, "KV-cache block size in tokens")->capture_default_str();
  command->add_option("--threads", options->threads, "CPU threads (0 = all cores)")->capture_default_str();
  command->callback([options, &runner] { runner = [options] { run_generate(*options); }; });
}

}  // namespace iol::cli
