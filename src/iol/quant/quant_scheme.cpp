#include "iol/quant/quant_scheme.hpp"

namespace iol::quant {

std::string_view scheme_name(QuantScheme scheme) {
  switch (scheme) {
    case QuantScheme::None: return "none";
    case QuantScheme::Fp8: return "fp8";
    case QuantScheme::Int8WeightOnly: return "int8-weight-only";
  }
  return "none";
}

std::optional<QuantScheme> parse_scheme(std::string_view name) {
  for (QuantScheme s : {QuantScheme::None, QuantScheme::Fp8, QuantScheme::Int8WeightOnly})
    if (name == scheme_name(s)) return s;
  return std::nullopt;
}

std::string_view kv_cache_dtype_name(KvCacheDtype dtype) { return dtype == KvCacheDtype::Fp8 ? "fp8" : "auto"; }

std::optional<KvCacheDtype> parse_kv_cache_dtype(std::string_view name) {
  if (name == "auto") return KvCacheDtype::Auto;
  if (name == "fp8" || name == "fp8_e4m3") return KvCacheDtype::Fp8;
  return std::nullopt;
}

}  // namespace iol::quant
