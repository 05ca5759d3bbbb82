// Tokenizer encode throughput (MB/s) on ~2 MB of the tokenizer test corpus, repeated, with the
// real tokenizer files. Usage: iol_micro_bench TOKENIZERS_DIR CORPUS_JSON [benchmark flags]
#include <benchmark/benchmark.h>

#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "iol/tokenizer/tokenizer.hpp"

namespace {

std::string g_tokenizers_dir, g_corpus_path;

std::string corpus_text(size_t target_bytes) {
  std::ifstream in(g_corpus_path);
  auto corpus = nlohmann::json::parse(in);
  std::string text;
  while (text.size() < target_bytes)
    for (const auto& s : corpus) text += s.get<std::string>() + "\n";
  return text;
}

void encode(benchmark::State& state, const char* name) {
  auto tokenizer = iol::tokenizer::Tokenizer::from_directory(g_tokenizers_dir + "/" + name);
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

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: iol_micro_bench TOKENIZERS_DIR CORPUS_JSON [benchmark flags]\n";
    return 2;
  }
  g_tokenizers_dir = argv[1];
  g_corpus_path = argv[2];
  argv[2] = argv[0];
  argc -= 2;
  argv += 2;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
