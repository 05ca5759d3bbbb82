// The element type of the paged KV cache (docs/kv-cache.md, docs/quantization.md): bf16, or E4M3
// codes with one scale per tensor (K and V of a layer): stored q = encode_e4m3(bf16(x) · 1/scale),
// read back as bf16(decode(q) · scale). With scale 1 (what the backend uses: no calibration yet)
// the read-back value is exact in bf16, so attention over an FP8 cache equals attention over a
// bf16 cache holding the decoded values.
#pragma once
#include <cstddef>
#include <cstdint>

namespace iol::backend::cuda::kernels {

enum class KvCacheFormat : uint8_t { Bf16, Fp8E4M3 };

constexpr size_t kv_element_bytes(KvCacheFormat f) { return f == KvCacheFormat::Bf16 ? 2 : 1; }

}  // namespace iol::backend::cuda::kernels
