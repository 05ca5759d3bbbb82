// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011). A draw is a pure function of (key, counter), so the host sampler and the
// CUDA sampler produce the same numbers for the same (request seed, sample, position, token) no
// matter how requests are batched, preempted or on which backend they run.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define IOL_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define IOL_HOST_DEVICE inline
#endif

namespace iol {

struct Philox4x32 {
  uint32_t v[4];
};

IOL_HOST_DEVICE void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

// Ten rounds of Philox4x32 over counter c with key k (the Random123 constants).
IOL_HOST_DEVICE Philox4x32 philox4x32_10(Philox4x32 c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c.v[0], hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, c.v[2], hi1, lo1);
    c = Philox4x32{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// Independent streams of one request: the target's sampling stream (plain sampling, and the
// speculative verifier's bonus and residual draws), the draft model's proposals, and the
// verifier's accept/reject coins (docs/speculative.md). A stream is the fourth counter word.
inline constexpr uint32_t kSamplingStream = 0x5A4D504Cu;
inline constexpr uint32_t kDraftStream = 0x44524654u;
inline constexpr uint32_t kAcceptStream = 0x41434350u;
inline constexpr uint32_t kForcedAcceptStream = 0x46524345u;  // benchmark-only forced verdicts

// One uniform in (0, 1) per (request seed, sample index, output position, token id, stream).
// 24 random bits, offset by half a step, so it is never 0 or 1 (log(-log u) is finite).
IOL_HOST_DEVICE float stream_uniform(uint64_t seed, uint32_t sample_index, uint32_t position, uint32_t token,
                                     uint32_t stream) {
  const Philox4x32 r = philox4x32_10(Philox4x32{{token, position, sample_index, stream}},
                                     static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return (static_cast<float>(r.v[0] >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

// The sampling stream: what every plain draw reads.
IOL_HOST_DEVICE float sampling_uniform(uint64_t seed, uint32_t sample_index, uint32_t position, uint32_t token) {
  return stream_uniform(seed, sample_index, position, token, kSamplingStream);
}

}  // namespace iol
