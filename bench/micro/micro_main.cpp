// iol_micro_bench TOKENIZERS_DIR CORPUS_JSON [benchmark flags]
#include <benchmark/benchmark.h>

#include <iostream>

#include "micro_inputs.hpp"

namespace iol::micro {
std::string tokenizers_dir, corpus_path;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: iol_micro_bench TOKENIZERS_DIR CORPUS_JSON [benchmark flags]\n";
    return 2;
  }
  iol::micro::tokenizers_dir = argv[1];
  iol::micro::corpus_path = argv[2];
  argv[2] = argv[0];
  argc -= 2;
  argv += 2;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
