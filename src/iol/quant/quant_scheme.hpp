// Quantization schemes (docs/quantization.md): which layers hold 8-bit weights, whether the
// activations entering them are quantized too, and the KV cache's element type. Parsed from the
// --quantization and --kv-cache-dtype flags; every backend reads the same value.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace iol::quant {

enum class QuantScheme {
  None,             // bf16 weights (the checkpoint's dtype on the CPU reference)
  Fp8,              // W8A8: E4M3 weights per output channel, E4M3 activations per token
  Int8WeightOnly,   // W8A16: INT8 weights per output channel, bf16 activations
};

enum class KvCacheDtype { Auto, Fp8 };

// The 8-bit element format of a scheme's weights (and activations where they are quantized).
enum class ElementFormat { Fp8E4M3, Int8 };

std::string_view scheme_name(QuantScheme scheme);  // "none", "fp8", "int8-weight-only"
std::optional<QuantScheme> parse_scheme(std::string_view name);
std::string_view kv_cache_dtype_name(KvCacheDtype dtype);  // "auto", "fp8"
std::optional<KvCacheDtype> parse_kv_cache_dtype(std::string_view name);

inline bool quantizes_weights(QuantScheme s) { return s != QuantScheme::None; }
inline bool quantizes_activations(QuantScheme s) { return s == QuantScheme::Fp8; }
inline ElementFormat element_format(QuantScheme s) {
  return s == QuantScheme::Fp8 ? ElementFormat::Fp8E4M3 : ElementFormat::Int8;
}

}  // namespace iol::quant
