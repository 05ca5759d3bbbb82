// The iol command line end to end: outputs, exit codes (2 usage, 1 runtime) and one-line errors.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>
#include <nlohmann/json.hpp>

#include "../support/poison_tensor.hpp"
#include "../support/temp_dir.hpp"
#include "iol/core/error.hpp"
#include "iol/core/thread_pool.hpp"
#include "iol/model/safetensors.hpp"

namespace iol {
namespace {

struct Result {
  int exit_code;
  std::string out, err;
};

// Runs a shell command line (its stdout and stderr captured).
Result run_shell(const std::string& command_line) {
  testing::TempDir dir;
  std::string command = command_line + " >" + dir.str("out") + " 2>" + dir.str("err");
  int status = std::system(command.c_str());
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir.str("out")), slurp(dir.str("err"))};
}

Result run(const std::string& args) { return run_shell(std::string(IOL_BINARY) + " " + args); }

int count_lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

TEST(Cli, HelpShowsExamplesForEverySubcommand) {
  for (const char* sub : {"", "generate", "model", "model create", "model info", "bench", "report", "tokenize", "eval"}) {
    Result r = run(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Example"), std::string::npos) << "'iol " << sub << " --help' has no examples";
  }
}

// iol eval on the trained reference target: against itself every figure is exact (KL 0, top-1 1,
// no greedy divergence); 8-bit weights cost a little of each; bad input is one line, exit 2.
TEST(Cli, EvalComparesAQuantizedModelWithTheUnquantizedOne) {
  const std::string ref = std::string(IOL_FIXTURES_DIR) + "/reference_models/";
  const std::string base = "eval --model " + ref + "target --backend cpu --compare-to bf16 --text " + ref +
                           "heldout-sample.txt --window 128 --max-windows 3 --greedy-prompts 3 --greedy-tokens 24 --json";
  Result same = run(base + " --quantization none");
  ASSERT_EQ(same.exit_code, 0) << same.err;
  const auto s = nlohmann::json::parse(same.out);
  EXPECT_EQ(s["positions"], 3 * 127);
  EXPECT_EQ(s["kl_mean"], 0.0);
  EXPECT_EQ(s["top1_agreement"], 1.0);
  EXPECT_EQ(s["perplexity_change"], 0.0);
  EXPECT_EQ(s["greedy_tokens_before_divergence"], 24.0);
  EXPECT_EQ(s["dummy_weights"], false);
  EXPECT_GT(s["perplexity_reference"].get<double>(), 1.0);
  Result fp8 = run(base + " --quantization fp8");
  ASSERT_EQ(fp8.exit_code, 0) << fp8.err;
  const auto q = nlohmann::json::parse(fp8.out);
  EXPECT_GT(q["kl_mean"].get<double>(), 0.0);
  EXPECT_GE(q["kl_p99"].get<double>(), q["kl_mean"].get<double>());
  EXPECT_LT(q["kl_mean"].get<double>(), 0.1);  // measured 0.006 nats over 64 windows
  EXPECT_GT(q["top1_agreement"].get<double>(), 0.8);
  EXPECT_LT(q["top1_agreement"].get<double>(), 1.0);
  EXPECT_EQ(q["quantization"], "fp8");
  Result bad = run("eval --preset tiny --quantization fp8 --compare-to fp16 --text " + ref + "heldout-sample.txt");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "iol: error: --compare-to must be bf16 (the unquantized model; got 'fp16') (see --help)\n");
  Result missing = run("eval --preset tiny --compare-to bf16 --text /nonexistent.txt");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nonexistent.txt"), std::string::npos) << missing.err;
}

TEST(Cli, CreatedModelGeneratesTheSameAsThePresetsDummyWeights) {
  testing::TempDir dir;
  Result created = run("model create --preset tiny --seed 11 --out " + dir.str("tiny"));
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string args = " --prompt-ids 256,1,2,3 --max-tokens 12 --temperature 0 --ignore-eos --output-ids";
  Result from_dir = run("generate --model " + dir.str("tiny") + args);
  Result from_preset = run("generate --preset tiny --weights-seed 11" + args);
  ASSERT_EQ(from_dir.exit_code, 0) << from_dir.err;
  EXPECT_EQ(from_dir.out, from_preset.out);
  EXPECT_EQ(std::count(from_dir.out.begin(), from_dir.out.end(), ','), 11);
  EXPECT_NE(from_dir.err.find("iol generate: 4 prompt + 12 output tokens"), std::string::npos) << from_dir.err;
  EXPECT_NE(from_dir.err.find("TTFT"), std::string::npos);
  Result info = run("model info --model " + dir.str("tiny"));
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("architecture: LlamaForCausalLM"), std::string::npos);
}

TEST(Cli, SeededSamplingIsReproducibleAndJsonCarriesLogprobs) {
  const std::string base = "generate --preset tiny --prompt-ids 256,5 --max-tokens 16 --ignore-eos --output-ids";
  Result a = run(base + " --seed 3"), b = run(base + " --seed 3"), c = run(base + " --seed 4");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  Result json = run("generate --preset tiny --prompt-ids 256,5 --max-tokens 3 --temperature 0 --json --logprobs 2 --ignore-eos");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["output_ids"].size(), 3u);
  EXPECT_EQ(parsed["logprobs"][0]["top"].size(), 2u);
  EXPECT_EQ(parsed["finish_reason"], "length");
}

TEST(Cli, StopTokenEndsGeneration) {
  Result greedy = run("generate --preset tiny --prompt-ids 256,9 --max-tokens 8 --temperature 0 --ignore-eos --output-ids");
  ASSERT_EQ(greedy.exit_code, 0);
  std::string third = greedy.out.substr(0, greedy.out.find('\n'));
  // Stop at the first token's id: generation ends after one token.
  std::string first = third.substr(0, third.find(','));
  Result stopped = run("generate --preset tiny --prompt-ids 256,9 --max-tokens 8 --temperature 0 --ignore-eos --output-ids "
                       "--stop-token-ids " + first);
  EXPECT_EQ(stopped.out, first + "\n");
  EXPECT_NE(stopped.err.find("finish stop"), std::string::npos);
}

TEST(Cli, PromptsFileRunsAsOneInFlightBatchWithEveryLever) {
  testing::TempDir dir;
  std::ofstream(dir.str("prompts.txt")) << "# one prompt per line\n256,1,2,3\n\n256,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19\n256,9\n";
  const std::string base = "generate --preset tiny --prompts-file " + dir.str("prompts.txt") +
                           " --output-ids --temperature 0 --ignore-eos --max-tokens 10";
  Result inflight = run(base);
  ASSERT_EQ(inflight.exit_code, 0) << inflight.err;
  EXPECT_EQ(count_lines(inflight.out), 3);
  EXPECT_NE(inflight.err.find("3 requests (3 samples), 30 output tokens"), std::string::npos) << inflight.err;
  EXPECT_NE(inflight.err.find("peak 3 running"), std::string::npos) << inflight.err;
  // Each line equals that prompt run alone, and every lever gives the same tokens.
  Result alone = run("generate --preset tiny --prompt-ids 256,9 --output-ids --temperature 0 --ignore-eos --max-tokens 10");
  EXPECT_EQ(inflight.out.substr(inflight.out.rfind('\n', inflight.out.size() - 2) + 1), alone.out);
  for (const char* lever : {" --batching static", " --kv-layout contiguous", " --no-prefix-caching --no-chunked-prefill",
                            " --kv-cache-memory 400000 --max-model-len 32 --max-num-batched-tokens 8",
                            " --kv-cache-memory 400000 --max-model-len 32 --scheduler-policy guaranteed-no-evict"}) {
    Result r = run(base + lever);
    EXPECT_EQ(r.exit_code, 0) << lever << ": " << r.err;
    EXPECT_EQ(r.out, inflight.out) << lever;
  }
  std::ofstream(dir.str("bad.txt")) << "256,1\n256,x\n";
  Result bad = run("generate --preset tiny --prompts-file " + dir.str("bad.txt"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err, "iol: error: " + dir.str("bad.txt") + ":2: prompt: 'x' is not a non-negative token id (expected e.g. 1,2,3)\n");
}

TEST(Cli, TextPromptsAreEncodedWithTheModelsTokenizer) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --out " + dir.str("tiny")).exit_code, 0);
  // The tiny model's byte-level tokenizer: BOS 256, then one id per byte.
  Result tokens = run("tokenize --model " + dir.str("tiny") + " --text Hi");
  EXPECT_EQ(tokens.out.substr(0, tokens.out.find('\n')), "256,72,105");
  // Like transformers' decode: special tokens kept unless asked otherwise.
  EXPECT_EQ(run("tokenize --model " + dir.str("tiny") + " --decode 256,72,105").out, "<|begin_of_text|>Hi\n");
  EXPECT_EQ(run("tokenize --model " + dir.str("tiny") + " --decode 256,72,105 --no-special").out, "Hi\n");
  const std::string flags = " --max-tokens 6 --temperature 0 --ignore-eos --output-ids";
  Result text = run("generate --model " + dir.str("tiny") + " --prompt Hi" + flags);
  Result ids = run("generate --model " + dir.str("tiny") + " --prompt-ids 256,72,105" + flags);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, ids.out);
  std::filesystem::remove(dir.path() / "tiny" / "tokenizer.json");
  Result missing = run("generate --model " + dir.str("tiny") + " --prompt Hi");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "iol: error: " + dir.str("tiny") + ": no tokenizer.json, so text prompts cannot be encoded (use --prompt-ids)\n");
  Result bad = run("tokenize --model " + dir.str("tiny") + " --text Hi");
  EXPECT_EQ(bad.err, "iol: error: " + dir.str("tiny") + ": no tokenizer.json (a Hugging Face model or tokenizer directory is expected)\n");
}

TEST(Cli, EmptyTextIsEncodedNotTakenForAMissingOption) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --out " + dir.str("tiny")).exit_code, 0);
  Result empty = run("tokenize --model " + dir.str("tiny") + " --text '' --no-special");
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "\n");  // the empty id list
  EXPECT_EQ(empty.err, "iol tokenize: 0 tokens\n");
  EXPECT_EQ(run("tokenize --model " + dir.str("tiny") + " --text '' --no-special --json").out, "{\"ids\":[],\"pieces\":[]}\n");
  // With special tokens, like transformers' tokenizer(""): only BOS.
  Result bos = run("tokenize --model " + dir.str("tiny") + " --text ''");
  EXPECT_EQ(bos.out.substr(0, bos.out.find('\n')), "256");
  // Given empty still counts as given: combined with another input it is refused.
  Result both = run("tokenize --model " + dir.str("tiny") + " --text '' --decode 72");
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_EQ(both.err, "iol: error: give exactly one of --text TEXT, --messages FILE or --decode IDS (see --help)\n");
}

TEST(Cli, ChatMessagesRenderWithTheTemplateAndEncodeWithoutAddingBos) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --out " + dir.str("tiny")).exit_code, 0);
  std::ofstream(dir.str("chat.json")) << R"({"messages": [{"role": "user", "content": "Hi"}]})";
  std::ofstream(dir.str("turns.jinja")) << "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
                                           "{% if add_generation_prompt %}[assistant]{% endif %}";
  const std::string chat = " --messages " + dir.str("chat.json") + " --chat-template " + dir.str("turns.jinja");
  Result rendered = run("tokenize --model " + dir.str("tiny") + chat + " --render-only");
  ASSERT_EQ(rendered.exit_code, 0) << rendered.err;
  EXPECT_EQ(rendered.out, "<|begin_of_text|>[user]Hi[assistant]");
  // The template wrote BOS as text; it is encoded once (to id 256), not added a second time.
  Result ids = run("tokenize --model " + dir.str("tiny") + chat + " --json");
  auto j = nlohmann::json::parse(ids.out);
  EXPECT_EQ(j["text"], "<|begin_of_text|>[user]Hi[assistant]");
  EXPECT_EQ(j["ids"][0], 256);
  EXPECT_EQ(j["ids"].size(), 1u + std::string("[user]Hi[assistant]").size());
  Result no_prompt = run("tokenize --model " + dir.str("tiny") + chat + " --render-only --no-generation-prompt");
  EXPECT_EQ(no_prompt.out, "<|begin_of_text|>[user]Hi");
  // generate --messages runs exactly the rendered ids.
  std::string id_list;
  for (const auto& id : j["ids"]) id_list += (id_list.empty() ? "" : ",") + std::to_string(id.get<int>());
  const std::string flags = " --max-tokens 5 --temperature 0 --ignore-eos --output-ids";
  Result from_chat = run("generate --model " + dir.str("tiny") + chat + flags);
  Result from_ids = run("generate --model " + dir.str("tiny") + " --prompt-ids " + id_list + flags);
  ASSERT_EQ(from_chat.exit_code, 0) << from_chat.err;
  EXPECT_EQ(from_chat.out, from_ids.out);
  // Without a template: one line that says what to do.
  Result none = run("tokenize --model " + dir.str("tiny") + " --messages " + dir.str("chat.json"));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_EQ(none.err, "iol: error: " + dir.str("tiny") + ": no chat template (no chat_template.jinja, no \"chat_template\" in "
            "tokenizer_config.json); pass one with --chat-template FILE\n");
  std::ofstream(dir.str("bad.json")) << R"([{"role": "user", "content": "x"},)";
  Result bad = run("tokenize --model " + dir.str("tiny") + " --messages " + dir.str("bad.json") + " --chat-template " + dir.str("turns.jinja"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(count_lines(bad.err), 1);
  EXPECT_EQ(bad.err.rfind("iol: error: " + dir.str("bad.json") + ": malformed JSON: ", 0), 0u) << bad.err;
  std::ofstream(dir.str("broken.jinja")) << "{% for m in messages %}";
  Result broken = run("tokenize --model " + dir.str("tiny") + " --messages " + dir.str("chat.json") + " --chat-template " + dir.str("broken.jinja"));
  EXPECT_EQ(broken.err, "iol: error: " + dir.str("broken.jinja") + ": line 1: unexpected end of template: '{% for %}' opened here is "
            "not closed (expected 'endfor' or 'else')\n");
}

// Speculative decoding from the command line (docs/speculative.md): greedy output ids with the
// draft model and with n-gram lookup equal those without; bad combinations are usage errors.
TEST(Cli, SpeculativeDecodingKeepsGreedyOutputs) {
  const std::string model = std::string(IOL_FIXTURES_DIR) + "/reference_models/";
  const std::string base = "generate --model " + model + "target --threads 1 --temperature 0 --max-tokens 40 "
                           "--output-ids --prompt 'The :mod:`os` module provides a portable way of using'";
  const Result plain = run(base);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const Result draft = run(base + " --speculative-model " + model + "draft --num-speculative-tokens 5");
  ASSERT_EQ(draft.exit_code, 0) << draft.err;
  EXPECT_EQ(draft.out, plain.out);
  EXPECT_NE(draft.err.find("speculative (draft, k = 5)"), std::string::npos) << draft.err;
  const Result ngram = run(base + " --speculative-method ngram --num-speculative-tokens 3 --prompt-lookup-max 4");
  ASSERT_EQ(ngram.exit_code, 0) << ngram.err;
  EXPECT_EQ(ngram.out, plain.out);
  EXPECT_EQ(run(base + " --speculative-method draft").exit_code, 2);
  EXPECT_EQ(run(base + " --num-speculative-tokens 3").exit_code, 2);
  EXPECT_EQ(run(base + " --speculative-method ngram --speculative-model " + model + "draft").exit_code, 2);
  EXPECT_EQ(run(base + " --speculative-method bogus").exit_code, 2);
  // A draft whose vocabulary differs from the target's.
  EXPECT_EQ(run(base + " --speculative-model llama-3.1-8b").exit_code, 2);
}

TEST(Cli, UsageErrorsExitTwoWithOneLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"generate --preset tiny", "iol: error: no prompt: pass --prompt TEXT, --messages FILE, --prompt-ids 1,2,3 or --prompts-file FILE (see --help)\n"},
      {"generate --preset tiny --prompt hi --prompt-ids 1", "iol: error: give one of --prompt, --messages, --prompt-ids or --prompts-file (see --help)\n"},
      {"tokenize --model m --text hi --messages chat.json", "iol: error: give exactly one of --text TEXT, --messages FILE or --decode IDS (see --help)\n"},
      {"tokenize --model m --text hi --render-only", "iol: error: --render-only needs --messages FILE (see --help)\n"},
      {"generate --preset tiny --prompt-ids 1 --chat-template t.jinja", "iol: error: chat options need --messages FILE (see --help)\n"},
      {"tokenize --text hi", "iol: error: --model DIR is required (a directory with tokenizer.json) (see --help)\n"},
      {"generate --preset tiny --prompt-ids 1,x", "iol: error: --prompt-ids: 'x' is not a non-negative token id (expected e.g. 1,2,3) (see --help)\n"},
      {"generate --prompt-ids 1", "iol: error: give exactly one of --model DIR or --preset NAME (see --help)\n"},
      {"generate --preset tiny --prompt-ids 1 --load-format gguf",
       "iol: error: --load-format must be auto, safetensors or dummy (got 'gguf') (see --help)\n"},
      {"generate --preset tiny --prompt-ids 1 --bogus", "iol: error: The following argument was not expected: --bogus (see --help)\n"},
      {"model create --preset tiny", "iol: error: --out is required (see --help)\n"},
      {"generate --preset tiny --prompt-ids 1 --kv-cache-dtype fp16",
       "iol: error: --kv-cache-dtype must be auto or fp8 (got 'fp16') (see --help)\n"},
      {"generate --preset tiny --prompt-ids 1 --batching dynamic",
       "iol: error: --batching must be inflight or static (got 'dynamic') (see --help)\n"},
      {"generate --preset tiny --prompt-ids 1 --kv-cache-memory 100",
       "iol: error: --kv-cache-memory 100 holds no block (one block of 16 tokens needs 65536 bytes) (see --help)\n"},
      {"frobnicate", "iol: error: unknown subcommand 'frobnicate' (see --help)\n"},
      {"generate --preset tiny --prompt-ids 1 --top-p 2", "iol: error: --top-p: 2 is outside (0, 1] (see --help)\n"},
  };
  for (const auto& [args, message] : cases) {
    Result r = run(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_EQ(r.err, message) << args;
  }
}

TEST(Cli, RuntimeErrorsExitOneWithOneLine) {
  testing::TempDir dir;
  std::ofstream(dir.str("config.json")) << R"({"architectures": ["GPT2LMHeadModel"]})";
  const std::pair<std::string, std::string> cases[] = {
      {"generate --model " + dir.str() + " --prompt-ids 1",
       "iol: error: " + dir.str("config.json") + ": architecture 'GPT2LMHeadModel' is not supported (supported: "
       "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)\n"},
      {"generate --preset tiny --prompt-ids 1,512", "iol: error: request rejected: prompt token id 512 is outside the vocabulary [0, 512)\n"},
      {"generate --preset tiny --prompt-ids 1 --max-tokens 5000",
       "iol: error: request rejected: prompt (1 tokens) + max_tokens (5000) = 5001 exceeds the maximum model length 2048\n"},
      {"generate --preset nope --prompt-ids 1",
       "iol: error: unknown preset 'nope' (known: tiny, tiny-qwen2, tiny-llama3.1, llama-3.1-8b, llama-3.1-70b, llama-3.2-1b, "
       "llama-2-7b, llama-2-70b, qwen2.5-7b, mistral-7b)\n"},
  };
  for (const auto& [args, message] : cases) {
    Result r = run(args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_EQ(r.err, message) << args;
    EXPECT_EQ(count_lines(r.err), 1);
  }
}

TEST(Cli, BinaryLinksOnlyToolchainRuntimeLibraries) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "a sanitizer build links libasan/libubsan by design; the release build runs this check";
#endif
  // Binaries built on Debian 12 must run on Ubuntu 24.04: no shared fmt/spdlog/gtest whose
  // sonames differ between the two; only libc, libm, libstdc++, libgcc_s.
  FILE* pipe = popen(("ldd " + std::string(IOL_BINARY)).c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::array<char, 512> line{};
  while (fgets(line.data(), line.size(), pipe)) {
    std::string text(line.data());
    bool allowed = text.find("linux-vdso") != std::string::npos || text.find("ld-linux") != std::string::npos;
    for (const char* lib : {"libc.so", "libm.so", "libstdc++.so", "libgcc_s.so", "libpthread.so", "libdl.so", "librt.so",
                            "libcublasLt.so.13"})
      allowed |= text.find(lib) != std::string::npos;
    EXPECT_TRUE(allowed) << "unexpected shared library: " << text;
  }
  pclose(pipe);
}

// ---- Hardening (issue 14): each class of bad input fails at its boundary with one line. ----

// Runs iol under a time limit: a hang shows as exit 124 (timeout), a crash as -1 (a signal).
Result run_bounded(const std::string& args, int seconds = 60) {
  return run_shell("exec timeout -k 5 " + std::to_string(seconds) + " " + std::string(IOL_BINARY) + " " + args);
}

void expect_one_line_error(const Result& r, int exit_code, const std::string& needle, const std::string& what) {
  EXPECT_EQ(r.exit_code, exit_code) << what << ": " << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << what << ": " << r.err;
  EXPECT_EQ(r.err.rfind("iol: error: ", 0), 0u) << what << ": " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << what << ": expected '" << needle << "' in " << r.err;
}

TEST(CliHardening, NumericFlagsAreRangeCheckedNamingTheFlagAndRange) {
  const std::string base = "generate --preset tiny --prompt-ids 256,1 --max-tokens 2 ";
  const std::pair<std::string, std::string> cases[] = {
      {"--threads -1", "--threads: -1 is outside [0, 1024]"},          // hung for ever
      {"--threads 100000", "--threads: 100000 is outside [0, 1024]"},  // exhausted the process table
      {"--block-size 4503599627370496", "--block-size: 4503599627370496 is outside [1, 1024]"},  // SIGFPE
      {"--kv-layout contiguous --max-model-len 9223372036854775807", "--max-model-len: 9223372036854775807 is outside"},
      {"--max-model-len -5", "--max-model-len: -5 is outside [1, 16777216]"},  // silently the config's
      {"--max-model-len 99999999999999999999", "--max-model-len: '99999999999999999999' is outside"},
      {"--max-num-seqs -1", "--max-num-seqs: -1 is outside [0, 16384]"},
      {"--max-num-batched-tokens 1.5", "--max-num-batched-tokens: '1.5' is not an integer"},
      {"--kv-cache-memory -1", "--kv-cache-memory: -1 is outside"},
      {"--gpu-memory-utilization nan", "--gpu-memory-utilization: 'nan' is not finite"},
      {"--temperature inf", "--temperature: 'inf' is not finite"},
      {"--temperature -0.5", "--temperature: -0.5 is outside [0, 100]"},
      {"--top-k -2", "--top-k: -2 is outside"},
      {"--min-p 1e30", "--min-p: 1e30 is outside [0, 1]"},
      {"--logprobs 21", "--logprobs: 21 is outside [0, 20]"},
      {"--n 0", "--n: 0 is outside [1, 256]"},
      {"--seed -2", "--seed: -2 is outside"},
      {"--weights-seed -1", "--weights-seed: '-1' is not a non-negative integer"},
      {"--max-tokens abc", "--max-tokens: 'abc' is not an integer"},
  };
  for (const auto& [flags, needle] : cases) expect_one_line_error(run_bounded(base + flags, 30), 2, needle, flags);
  // Above the model's positions: refused with the model's limit, not replaced.
  expect_one_line_error(run_bounded(base + "--max-model-len 4096"), 2,
                        "--max-model-len 4096 exceeds the model's max_position_embeddings 2048", "max-model-len");
  // In range, the run still works.
  EXPECT_EQ(run_bounded(base + "--threads 2 --block-size 8 --max-model-len 64 --temperature 0").exit_code, 0);
}

TEST(CliHardening, ConfigValuesAreBoundedBeforeSizesAreComputed) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --out " + dir.str("m")).exit_code, 0);
  const std::string config = dir.str("m/config.json");
  auto patched = [&](const std::string& key, const std::string& value) {
    std::ifstream in(config);
    nlohmann::json j = nlohmann::json::parse(in);
    j[key] = nlohmann::json::parse(value);
    std::ofstream(dir.str("m2/config.json")) << j.dump();
  };
  std::filesystem::create_directories(dir.str("m2"));
  std::filesystem::copy_file(dir.str("m/model.safetensors"), dir.str("m2/model.safetensors"));
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"hidden_size", "1000000000000"}, {"num_hidden_layers", "100000"}, {"vocab_size", "4294967296"},
           {"max_position_embeddings", "9223372036854775807"}}) {
    patched(key, value);
    expect_one_line_error(run_bounded("generate --model " + dir.str("m2") + " --prompt-ids 1 --max-tokens 1"), 1,
                          "key '" + key + "' must be in [1, ", key);
  }
}

TEST(CliHardening, DeepJsonIsRefusedNotRecursedInto) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --out " + dir.str("m")).exit_code, 0);
  const std::string deep = std::string(30000, '[') + std::string(30000, ']');
  std::ofstream(dir.str("chat.json")) << R"([{"role": "user", "content": "hi", "x": )" << deep << "}]";
  std::ofstream(dir.str("ok.json")) << R"([{"role": "user", "content": "hi"}])";
  expect_one_line_error(run_bounded("generate --model " + dir.str("m") + " --messages " + dir.str("chat.json") +
                                    " --chat-template " + std::string(IOL_SOURCE_DIR) + "/chat_templates/llama-2-chat.jinja"),
                        1, "nested deeper than 256 levels", "--messages");
  expect_one_line_error(run_bounded("tokenize --model " + dir.str("m") + " --messages " + dir.str("ok.json") +
                                    " --render-only --chat-template " + std::string(IOL_SOURCE_DIR) +
                                    "/chat_templates/llama-2-chat.jinja --chat-template-kwargs '{\"a\": " + deep + "}'"),
                        1, "--chat-template-kwargs: nested deeper than 256 levels", "--chat-template-kwargs");
}

TEST(CliHardening, FifosAndDirectoriesAreRefusedWithoutBlocking) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --out " + dir.str("m")).exit_code, 0);
  for (const char* name : {"config.json", "model.safetensors"}) {
    std::filesystem::remove_all(dir.str("f"));
    std::filesystem::copy(dir.str("m"), dir.str("f"));
    std::filesystem::remove(dir.str("f/") + name);
    ASSERT_EQ(mkfifo((dir.str("f/") + name).c_str(), 0644), 0);
    expect_one_line_error(run_bounded("generate --model " + dir.str("f") + " --prompt-ids 1 --max-tokens 1", 20), 1,
                          "not a regular file", name);
  }
  ASSERT_EQ(mkfifo(dir.str("prompts").c_str(), 0644), 0);
  expect_one_line_error(run_bounded("generate --preset tiny --prompts-file " + dir.str("prompts"), 20), 1,
                        "not a regular file", "--prompts-file FIFO");
  expect_one_line_error(run_bounded("generate --preset tiny --prompts-file " + dir.str(), 20), 1, "not a regular file",
                        "--prompts-file directory");
}

TEST(CliHardening, TokenizerPostProcessorReferencesAreChecked) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --out " + dir.str("m")).exit_code, 0);
  nlohmann::json tokenizer = nlohmann::json::parse(std::ifstream(dir.str("m/tokenizer.json")));
  tokenizer["post_processor"] = {{"type", "TemplateProcessing"},
                                 {"single", {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                                             {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                                 {"special_tokens", nlohmann::json::object()}};
  std::ofstream(dir.str("m/tokenizer.json")) << tokenizer.dump();
  expect_one_line_error(run_bounded("tokenize --model " + dir.str("m") + " --text hi"), 1,
                        "post_processor.special_tokens has no entry '<bos>'", "TemplateProcessing");
}

TEST(CliHardening, NonFiniteLogitsFailThatRequestOnly) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --dtype f32 --out " + dir.str("m")).exit_code, 0);
  // Token 7's embedding row is NaN: a prompt holding it gets NaN logits; others are untouched.
  testing::poison_tensor(dir.str("m/model.safetensors"), "model.embed_tokens.weight", 7, 1);
  const std::string flags = " --max-tokens 4 --temperature 0 --ignore-eos --output-ids";
  expect_one_line_error(run_bounded("generate --model " + dir.str("m") + " --prompt-ids 256,7" + flags), 1,
                        "non-finite logits (NaN or Inf)", "poisoned prompt");
  Result clean = run_bounded("generate --model " + dir.str("m") + " --prompt-ids 256,9" + flags);
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_EQ(std::count(clean.out.begin(), clean.out.end(), ','), 3);
  // In one batch the clean prompt completes, the poisoned one fails, and the run says so.
  std::ofstream(dir.str("prompts.txt")) << "256,9\n256,7\n";
  Result batch = run_bounded("generate --model " + dir.str("m") + " --prompts-file " + dir.str("prompts.txt") + flags);
  expect_one_line_error(batch, 1, "non-finite logits", "batch");
  EXPECT_EQ(batch.out.substr(0, batch.out.find('\n') + 1), clean.out) << "the clean prompt did not complete alongside";
}

TEST(CliHardening, ModelCreateRefusesToOverwriteAndReplacesAtomically) {
  testing::TempDir dir;
  const std::string out = dir.str("m");
  ASSERT_EQ(run("model create --preset tiny --out " + out).exit_code, 0);
  expect_one_line_error(run("model create --preset tiny --seed 1 --out " + out), 2,
                        "--out " + out + ": exists and is not empty; pass --force", "existing model");
  std::ofstream(dir.str("file")) << "x";
  expect_one_line_error(run("model create --preset tiny --out " + dir.str("file")), 2, "exists and is not a directory", "file");
  // A process reading the model (mapped) while it is replaced keeps running on the old files. It
  // must outlast the 1 s before the replacement: 150 requests take ~10 s in a release build, and
  // under ASan (~25x slower) 20 do.
#if defined(__SANITIZE_ADDRESS__)
  const std::string reader_requests = "20";
#else
  const std::string reader_requests = "150";
#endif
  const std::string reader = std::string(IOL_BINARY) + " bench --model " + out + " --quiet --num-requests " + reader_requests + " "
                             "--input-len 32 --output-len 32 --out " + dir.str("r.jsonl");
  const std::string script = reader + " & pid=$!; sleep 1; " + std::string(IOL_BINARY) + " model create --preset tiny --seed 2 --force --out " +
                             out + " || exit 90; wait $pid";
  const int status = std::system(("sh -c '" + script + "' 2>/dev/null").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the reader died while the model was replaced (SIGBUS?) or create failed";
  // The new model is in place, nothing is left beside it.
  Result info = run("model info --model " + out);
  EXPECT_EQ(info.exit_code, 0) << info.err;
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) entries += e.path().filename().string().find(".tmp-") != std::string::npos ||
                                                                                   e.path().filename().string().find(".old-") != std::string::npos;
  EXPECT_EQ(entries, 0);
}

TEST(CliHardening, UnusedCheckpointTensorsAreReportedAsAWarning) {
  testing::TempDir dir;
  ASSERT_EQ(run("model create --preset tiny --dtype f32 --out " + dir.str("m")).exit_code, 0);
  // A second shard with a tensor no Llama layer reads.
  const float value = 1.0f;
  std::vector<model::TensorToWrite> extra = {{"model.layers.0.self_attn.rotary_emb.inv_freq", DType::F32, {1},
                                              std::as_bytes(std::span(&value, 1))}};
  model::write_safetensors(dir.str("m/extra.safetensors"), extra);
  nlohmann::json index = {{"weight_map", nlohmann::json::object()}};
  std::ifstream header_in(dir.str("m/model.safetensors"), std::ios::binary);
  uint64_t n = 0;
  header_in.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  header_in.read(header.data(), static_cast<std::streamsize>(n));
  const nlohmann::json parsed = nlohmann::json::parse(header);  // a named value: items() does not extend a temporary's life
  for (const auto& [name, entry] : parsed.items())
    if (name != "__metadata__") index["weight_map"][name] = "model-1.safetensors";
  index["weight_map"]["model.layers.0.self_attn.rotary_emb.inv_freq"] = "extra.safetensors";
  header_in.close();
  std::filesystem::rename(dir.str("m/model.safetensors"), dir.str("m/model-1.safetensors"));  // the index is read without it
  std::ofstream(dir.str("m/model.safetensors.index.json")) << index.dump();
  Result info = run("model info --model " + dir.str("m"));
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.err.find("iol: warning: " + dir.str("m") + ": 1 checkpoint tensor(s) not used by LlamaForCausalLM and "
                          "ignored: model.layers.0.self_attn.rotary_emb.inv_freq"), std::string::npos) << info.err;
}

TEST(CliHardening, ThreadPoolCreationFailsCleanly) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "RLIMIT_AS cannot be lowered under AddressSanitizer (its shadow memory is reserved up front)";
#else
  // A child with little address space left: thread stacks cannot be mapped. The pool must throw
  // (after joining what it started), not hang or terminate.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(20);  // a hang fails the test as SIGALRM
    rlimit limit{};
    getrlimit(RLIMIT_AS, &limit);
    std::ifstream statm("/proc/self/statm");
    long pages = 0;
    statm >> pages;
    limit.rlim_cur = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + (64 << 20);
    setrlimit(RLIMIT_AS, &limit);
    try {
      ThreadPool pool(512);  // 512 × 8 MiB stacks do not fit in 64 MiB
      _exit(3);
    } catch (const Error& e) {
      _exit(std::string(e.what()).find("thread pool: could not start thread") == 0 ? 0 : 4);
    } catch (...) {
      _exit(5);
    }
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
#endif
}

}  // namespace
}  // namespace iol
