// Checks and writes for the CLI's whole-file outputs (reports, exported request lists, parity
// logits): checked before any work is done, written to a temporary file and renamed, so a failure
// never leaves a truncated file, and never over an input or a results file.
#pragma once
#include <vector>
#include <string>

namespace iol::cli {

// Throws UsageError naming `flag` when `path` is a directory, its directory cannot be created, an
// existing file cannot be written, or it is the same file as one of `inputs`; unless the output
// appends records (iol bench --out), an existing results file is refused too.
void check_output_path(const std::string& path, const char* flag, const std::vector<std::string>& inputs = {},
                       bool appends_records = false);
// Throws UsageError when `path` exists and holds result records (a .jsonl written by iol bench).
void refuse_results_file(const std::string& path, const char* flag);
// Writes `contents` to PATH.tmp-PID and renames it over `path`.
void write_file_atomically(const std::string& path, const std::string& contents);

}  // namespace iol::cli
