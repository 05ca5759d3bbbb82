// Whether two paths name one file (by inode when both exist, else by normalized path), so that an
// output is never opened over an input (`iol report R.jsonl --out R.jsonl`).
#pragma once
#include <filesystem>
#include <string>
#include <system_error>

namespace iol {

inline bool same_file(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  std::error_code error;
  if (std::filesystem::exists(a, error) && std::filesystem::exists(b, error))
    return std::filesystem::equivalent(a, b, error);
  return std::filesystem::weakly_canonical(a, error) == std::filesystem::weakly_canonical(b, error);
}

}  // namespace iol
