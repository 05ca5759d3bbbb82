// Inputs every micro-benchmark reads, set from the command line by micro_main.cpp.
#pragma once
#include <string>

namespace iol::micro {

extern std::string tokenizers_dir;  // NAME/tokenizer.json + tokenizer_config.json (scripts/fetch_tokenizers.sh)
extern std::string corpus_path;     // tests/fixtures/tokenizer/corpus.json

}  // namespace iol::micro
