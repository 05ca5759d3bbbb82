// The one validation layer for numeric flags: every integer or real option is registered with an
// explicit range, checked on the text as CLI11 parses it, so a value outside it (negative, zero
// where zero means nothing, huge, NaN, overflowing, not a number) is a usage error naming the
// flag and the range, before anything runs, and never a silently different run:
//   iol: error: --threads: -1 is outside [0, 1024] (see --help)
#pragma once
#include <cstdint>
#include <limits>
#include <string>

#include <CLI/CLI.hpp>

namespace iol::cli {

// A whole-string integer in [min, max] (decimal; no fraction, no exponent).
CLI::Validator int_range(int64_t min, int64_t max);
// The same for uint64 values (seeds), [0, max].
CLI::Validator uint_range(uint64_t max = std::numeric_limits<uint64_t>::max());
// A finite real in [min, max]; with min_exclusive, in (min, max].
CLI::Validator real_range(double min, double max, bool min_exclusive = false);

// Upper bounds for CLI values that size things (threads, buffers); see docs/testing.md.
inline constexpr int64_t kMaxThreads = 1024;
inline constexpr int64_t kMaxNumSeqs = 16384;
inline constexpr int64_t kMaxBatchedTokens = int64_t{1} << 20;
inline constexpr int64_t kMaxBlockSize = 1024;
inline constexpr int64_t kMaxKvCacheMemory = int64_t{1} << 50;

}  // namespace iol::cli
