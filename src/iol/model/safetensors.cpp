#include "iol/model/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"

namespace iol::model {

using nlohmann::json;

namespace {
// Largest header we accept: real checkpoints with thousands of tensors stay far below this.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

uint64_t read_u64_le(const std::byte* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint64_t>(p[i]);
  return value;
}

uint64_t checked_nonnegative(const json& value, const std::string& source, const std::string& tensor,
                             const char* field) {
  if (!value.is_number_unsigned())
    fail("{}: tensor '{}': {} must hold non-negative integers (got {})", source, tensor, field, value.dump());
  return value.get<uint64_t>();
}
}  // namespace

int64_t TensorView::numel() const {
  int64_t count = 1;
  for (auto d : shape) count *= d;
  return count;
}

float TensorView::get(size_t i) const {
  const std::byte* p = data + i * dtype_size(dtype);
  switch (dtype) {
    case DType::F32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::F16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return f16_to_f32(v);
    }
    case DType::BF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return bf16_to_f32(v);
    }
    default:
      fail("{}: tensor '{}': dtype {} cannot be read as float", source, name, dtype_name(dtype));
  }
}

SafetensorsHeader parse_safetensors(std::span<const std::byte> bytes, const std::string& source) {
  if (bytes.size() < 8)
    fail("{}: truncated safetensors file: {} bytes, need at least 8 for the header length", source, bytes.size());
  uint64_t header_len = read_u64_le(bytes.data());
  if (header_len > bytes.size() - 8)
    fail("{}: header length {} runs past the end of the file ({} bytes); the file is truncated or not "
         "safetensors", source, header_len, bytes.size());
  if (header_len > kMaxHeaderBytes)
    fail("{}: header length {} exceeds the {} byte limit", source, header_len, kMaxHeaderBytes);
  const char* header_begin = reinterpret_cast<const char*>(bytes.data() + 8);
  check_json_depth(std::string_view(header_begin, header_len), source);
  json header = json::parse(header_begin, header_begin + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail("{}: malformed header JSON ({} bytes)", source, header_len);
  if (!header.is_object()) fail("{}: header JSON must be an object of tensors", source);

  const std::byte* data_section = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;
  SafetensorsHeader result;
  struct Extent {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Extent> extents;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("{}: __metadata__ must be an object of strings", source);
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail("{}: __metadata__ key '{}' must be a string", source, key);
        result.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) fail("{}: tensor '{}': entry must be an object", source, name);
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string())
      fail("{}: tensor '{}': missing or non-string 'dtype'", source, name);
    auto dtype = dtype_from_safetensors_name(dtype_it->get<std::string>());
    if (!dtype)
      fail("{}: tensor '{}': unsupported dtype '{}' (supported: F32, F16, BF16, F8_E4M3, F8_E5M2, I8, I32, I64)",
           source, name, dtype_it->get<std::string>());
    if (shape_it == entry.end() || !shape_it->is_array())
      fail("{}: tensor '{}': missing or non-array 'shape'", source, name);
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2)
      fail("{}: tensor '{}': 'data_offsets' must be [begin, end]", source, name);

    TensorView view;
    view.name = name;
    view.dtype = *dtype;
    view.source = source;
    uint64_t numel = 1;
    for (const auto& dim : *shape_it) {
      uint64_t d = checked_nonnegative(dim, source, name, "shape");
      if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / d)
        fail("{}: tensor '{}': shape {} is too large", source, name, shape_it->dump());
      numel *= d;
      view.shape.push_back(static_cast<int64_t>(d));
    }
    uint64_t begin = checked_nonnegative((*offsets_it)[0], source, name, "data_offsets");
    uint64_t end = checked_nonnegative((*offsets_it)[1], source, name, "data_offsets");
    if (begin > end || end > data_size)
      fail("{}: tensor '{}': data_offsets [{}, {}] are outside the data section ({} bytes)", source, name, begin,
           end, data_size);
    uint64_t expected = numel * dtype_size(*dtype);
    if (end - begin != expected)
      fail("{}: tensor '{}': data_offsets span {} bytes but shape {} of {} needs {}", source, name, end - begin,
           shape_it->dump(), dtype_name(*dtype), expected);
    view.data = data_section + begin;
    view.nbytes = expected;
    auto [it, inserted] = result.tensors.emplace(name, std::move(view));
    if (begin != end) extents.push_back({begin, end, &it->first});  // an empty tensor holds no bytes to overlap
  }
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  // Sorted by begin, any overlap shows against the extent reaching furthest so far.
  for (size_t i = 1, furthest = 0; i < extents.size(); ++i) {
    const Extent& previous = extents[furthest];
    const Extent& current = extents[i];
    if (current.end > previous.end) furthest = i;
    if (current.begin < previous.end)
      fail("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", source, *previous.name, previous.begin,
           previous.end, *current.name, current.begin, current.end);
  }
  return result;
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(path), header_(parse_safetensors(file_.bytes(), path)) {}

std::string make_safetensors_header(std::span<const TensorToWrite> tensors,
                                    const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the tensors in data order, which makes files easy to inspect.
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& tensor : tensors) {
    header[tensor.name] = {{"dtype", std::string(dtype_name(tensor.dtype))},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  return text;
}

void write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("{}: cannot create file", path);
  std::string header = make_safetensors_header(tensors, metadata);
  uint64_t length = header.size();
  char length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  out.write(length_bytes, 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& tensor : tensors)
    out.write(reinterpret_cast<const char*>(tensor.bytes.data()), static_cast<std::streamsize>(tensor.bytes.size()));
  if (!out) fail("{}: write failed (disk full?)", path);
}

}  // namespace iol::model
