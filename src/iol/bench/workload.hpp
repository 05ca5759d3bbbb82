// Workload: what the benchmark sends — request lengths, prompts and arrival process — read from
// bench/scenarios/*.yaml and/or command-line flags. Everything is seeded and reproducible.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "iol/core/rng.hpp"

namespace iol::tokenizer {
class Tokenizer;
}

namespace iol::bench {

// Workload bounds (flags and scenario keys alike; docs/bench.md): a value outside is an error
// naming it, never clamped. The request rate's floor keeps a run's expected length finite.
inline constexpr int64_t kMaxNumRequests = 10'000'000;
inline constexpr int64_t kMaxConcurrency = 1 << 20;
inline constexpr double kMinRequestRate = 1e-3, kMaxRequestRate = 1e6;  // requests/s
inline constexpr double kMinBurstiness = 1e-2, kMaxBurstiness = 1e2;
inline constexpr int64_t kMaxRequestTokens = int64_t{1} << 24;            // = model::kMaxModelLen

// Token-count distribution (trtllm-bench's token-norm-dist and friends), clamped to [min, max].
struct LengthDistribution {
  enum class Kind { Fixed, Uniform, Normal } kind = Kind::Fixed;
  double value = 128;          // fixed
  double low = 0, high = 0;    // uniform, inclusive
  double mean = 0, stdev = 0;  // normal
  int64_t min = 1, max = 1 << 20;

  int64_t sample(Rng& rng) const;
  int64_t upper_bound() const;  // the longest length sample() can return
  // Throws iol::Error "SOURCE: KEY ..." unless every field is finite and in range: fixed values and
  // uniform bounds are integers in [min, max], 1 <= min <= max <= kMaxRequestTokens.
  void validate(const std::string& source, const std::string& key) const;
  std::string describe() const;
  nlohmann::json to_json() const;
};

enum class ArrivalMode { Offline, Closed, Poisson };

struct WorkloadSpec {
  std::string name = "default";
  int64_t num_requests = 64;
  int64_t warmup_requests = 0;     // sent first, excluded from metrics
  LengthDistribution input_len, output_len;
  bool ignore_eos = true;          // force outputs to their drawn length
  // random: token ids; text: seeded English-like words; copy: a passage then its opening again
  // (from the text file `dataset` if set, else seeded words: the n-gram proposer's workload);
  // sharegpt: first human turn of each conversation in `dataset` (output length = the first
  // reply's tokens); jsonl: {prompt, output_len} lines.
  std::string prompt_source = "random";
  std::string dataset;
  ArrivalMode arrival = ArrivalMode::Offline;
  std::vector<int64_t> concurrency;  // closed loop: one run per value
  std::vector<double> request_rate;  // Poisson: requests/s, one run per value
  double burstiness = 1.0;           // gamma shape: 1 = Poisson, < 1 burstier, > 1 smoother
  uint64_t seed = 0;

  static WorkloadSpec from_yaml_file(const std::string& path);
  void validate(const std::string& source) const;
  nlohmann::json to_json() const;
};

const char* arrival_mode_name(ArrivalMode mode);
// Whether prompts of this source are read from `dataset` (required for sharegpt and jsonl, optional for copy).
inline bool prompts_read_dataset(const std::string& source) {
  return source == "sharegpt" || source == "jsonl" || source == "copy";
}

// One sweep point: the arrival setting of one run.
struct SweepPoint {
  ArrivalMode mode;
  int64_t concurrency = 0;
  double request_rate = 0;
  std::string label() const;
};
std::vector<SweepPoint> sweep_points(const WorkloadSpec& spec);

struct BenchRequest {
  std::vector<int32_t> prompt_ids;
  int32_t output_len;
  bool warmup;
};

// Deterministic requests for a spec (warm-up first), over a vocabulary of `vocab_size` ids.
// Text and dataset prompts need `tokenizer` (else an iol::Error says so).
std::vector<BenchRequest> make_requests(const WorkloadSpec& spec, int64_t vocab_size,
                                        const tokenizer::Tokenizer* tokenizer = nullptr);

// Open-loop arrival times (seconds from start) with gamma-distributed gaps of mean 1/rate and
// shape `burstiness` (Poisson process when 1). Same seed, same times.
std::vector<double> gamma_arrival_times(int64_t n, double rate, double burstiness, uint64_t seed);
// A gamma(shape, 1) variate (Marsaglia & Tsang 2000).
double sample_gamma(double shape, Rng& rng);
double sample_standard_normal(Rng& rng);

}  // namespace iol::bench
