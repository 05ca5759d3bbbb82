// Device encoders and decoders of the 8-bit weight and activation formats, as the numerical
// contract of docs/quantization.md defines them (the host side, iol::quant, computes the same):
// E4M3 (OCP e4m3fn) rounds to nearest even and saturates to ±448; INT8 rounds half to even and
// clamps to ±127. A row is encoded as q = encode(x · inv) with inv = qmax / amax (one correctly
// rounded division per row, one multiply per element: __fdiv_rn and __fmul_rn, whatever the
// compiler flags), so a device-quantized tensor equals the host-quantized one bit for bit.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#endif

namespace iol::backend::cuda::kernels {

enum class QuantFormat : uint8_t { Fp8E4M3, Int8 };

constexpr float kFp8E4M3Max = 448.0f;
constexpr float kInt8Max = 127.0f;
// Per-token activation scales never fall below this amax (an all-zero row quantizes to zeros).
constexpr float kMinActivationAmax = 1e-6f;

constexpr float quant_max(QuantFormat f) { return f == QuantFormat::Fp8E4M3 ? kFp8E4M3Max : kInt8Max; }

// The device functions below exist for nvcc only (host .cpp files include this for QuantFormat).
#ifdef __CUDACC__

__device__ __forceinline__ uint8_t encode_e4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}
__device__ __forceinline__ float decode_e4m3(uint8_t q) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(q), __NV_E4M3);
  return __half2float(__half(h));
}
__device__ __forceinline__ int8_t encode_int8(float v) {
  return static_cast<int8_t>(max(-127, min(127, __float2int_rn(v))));
}

template <QuantFormat F>
__device__ __forceinline__ uint8_t encode(float v) {
  if constexpr (F == QuantFormat::Fp8E4M3) return encode_e4m3(v);
  else return static_cast<uint8_t>(encode_int8(v));
}
template <QuantFormat F>
__device__ __forceinline__ float decode(uint8_t q) {
  if constexpr (F == QuantFormat::Fp8E4M3) return decode_e4m3(q);
  else return static_cast<float>(static_cast<int8_t>(q));
}

// The scale s of a row whose largest magnitude is amax (x ≈ decode(q) · s), and the factor inv
// that encodes it (q = encode(x · inv)): weights take 1 for both when the row is all zeros,
// activations never go below kMinActivationAmax.
__device__ __forceinline__ float row_scale(float amax, float q_max, bool activation) {
  if (activation) return __fdiv_rn(fmaxf(amax, kMinActivationAmax), q_max);
  return amax == 0.0f ? 1.0f : __fdiv_rn(amax, q_max);
}
__device__ __forceinline__ float row_inverse_scale(float amax, float q_max, bool activation) {
  if (activation) return __fdiv_rn(q_max, fmaxf(amax, kMinActivationAmax));
  return amax == 0.0f ? 1.0f : __fdiv_rn(q_max, amax);
}

// Four 8-bit values of one 32-bit word, decoded to float (element 0 in the lowest byte).
__device__ __forceinline__ void decode4_e4m3(uint32_t word, float (&out)[4]) {
  const __half2_raw lo = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(word & 0xffffu), __NV_E4M3);
  const __half2_raw hi = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(word >> 16), __NV_E4M3);
  const float2 a = __half22float2(__half2(lo)), b = __half22float2(__half2(hi));
  out[0] = a.x, out[1] = a.y, out[2] = b.x, out[3] = b.y;
}
// 16 E4M3 codes (one 16-byte chunk, element 0 in the lowest byte) times scale, rounded to bf16:
// elements 0-7 in lo, 8-15 in hi (the FP8 KV cache widened for the attention MMAs).
__device__ __forceinline__ void widen_e4m3x16(uint4 codes, float scale, uint4& lo, uint4& hi) {
  const uint32_t words[4] = {codes.x, codes.y, codes.z, codes.w};
  uint32_t packed[8];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    float d[4];
    decode4_e4m3(words[q], d);
    const __nv_bfloat162 a = __floats2bfloat162_rn(d[0] * scale, d[1] * scale);
    const __nv_bfloat162 b = __floats2bfloat162_rn(d[2] * scale, d[3] * scale);
    packed[2 * q] = *reinterpret_cast<const uint32_t*>(&a);
    packed[2 * q + 1] = *reinterpret_cast<const uint32_t*>(&b);
  }
  lo = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  hi = make_uint4(packed[4], packed[5], packed[6], packed[7]);
}

// int8 → float without the conversion unit: the biased byte (b ^ 0x80) placed in the mantissa of
// 2^23 gives 2^23 + 128 + b exactly; subtracting that constant leaves b.
__device__ __forceinline__ void decode4_int8(uint32_t word, float (&out)[4]) {
  const uint32_t biased = word ^ 0x80808080u;
#pragma unroll
  for (int i = 0; i < 4; ++i)
    out[i] = __uint_as_float(__byte_perm(biased, 0x4b000000u, static_cast<unsigned>(i) | 0x7440u)) - 8388736.0f;
}

#endif  // __CUDACC__

}  // namespace iol::backend::cuda::kernels
