// Safetensors: validated parsing of the header and zero-copy views of the tensor data.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then the data section; offsets are relative to the start of the data section.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "iol/core/dtype.hpp"
#include "iol/core/mapped_file.hpp"

namespace iol::model {

// A read-only view of one tensor inside a mapped file (or an owned buffer).
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  std::string source;  // file the tensor came from, for error messages

  int64_t numel() const;
  // Element i converted to float (F32/F16/BF16 only): slow path for tests and tools.
  float get(size_t i) const;
};

struct SafetensorsHeader {
  std::map<std::string, TensorView> tensors;  // data pointers point into the given bytes
  std::map<std::string, std::string> metadata;
};

// Parses and validates the whole file image (header and data-section bounds).
// Every error names `source` and, where one is involved, the tensor.
SafetensorsHeader parse_safetensors(std::span<const std::byte> file_bytes, const std::string& source);

// A memory-mapped .safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::map<std::string, TensorView>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
};

// One tensor to write: name, dtype, shape and its raw little-endian bytes.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;
};

// Header JSON (padded to 8-byte alignment) for the given tensors laid out back to back in order.
std::string make_safetensors_header(std::span<const TensorToWrite> tensors,
                                    const std::map<std::string, std::string>& metadata);
void write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace iol::model
