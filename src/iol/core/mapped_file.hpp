// Read-only memory map of a whole file (RAII). Weights are used in place, never copied.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace iol {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws iol::Error naming the path
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace iol
