// Tokenizer encode throughput (MB/s) on ~2 MB of the tokenizer test corpus, repeated, with the
// real tokenizer files. Usage: iol_micro_bench TOKENIZERS_DIR CORPUS_JSON [benchmark flags]
#include <benchmark/benchmark.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "iol/tokenizer/tokenizer.hpp"
#include "micro_inputs.hpp"

namespace {

std::string corpus_text(size_t target_bytes) {
  std::ifstream in(iol::micro::corpus_path);
  auto corpus = nlohmann::json::parse(in);
  std::string text;
  while (text.size() < target_bytes)
    for (const auto& s : corpus) text += s.get<std::string>() + "\n";
  return text;
}

void encode(benchmark::State& state, const char* name) {
  auto tokenizer = iol::tokenizer::Tokenizer::from_directory(iol::micro::tokenizers_dir + "/" + name);
  const std::string text = corpus_text(2 << 20);
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tokenizer->encode(text, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["bytes_per_token"] = static_cast<double>(text.size()) / static_cast<double>(tokens);
}

}  // namespace

BENCHMARK_CAPTURE(encode, llama3, "llama3")->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(encode, llama2, "llama2")->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(encode, qwen3, "qwen3")->Unit(benchmark::kMillisecond)->MinTime(2.0);
