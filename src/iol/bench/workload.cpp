#include "iol/bench/workload.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <optional>
#include <cmath>
#include <numbers>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"
#include "iol/tokenizer/tokenizer.hpp"

namespace iol::bench {

double sample_standard_normal(Rng& rng) {
  // Box–Muller; 1 − u keeps the logarithm finite.
  double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double sample_gamma(double shape, Rng& rng) {
  if (shape < 1.0) {
    // Boost: gamma(a) = gamma(a + 1) · U^(1/a).
    double u = 1.0 - rng.uniform();
    return sample_gamma(shape + 1.0, rng) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x = sample_standard_normal(rng), v = 1.0 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    double u = 1.0 - rng.uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

std::vector<double> gamma_arrival_times(int64_t n, double rate, double burstiness, uint64_t seed) {
  Rng rng(seed ^ 0xa5a5a5a5ull);
  std::vector<double> times;
  double t = 0;
  for (int64_t i = 0; i < n; ++i) {
    times.push_back(t);
    // Gap ~ gamma(shape k, scale 1/(rate·k)): mean 1/rate, variance 1/(k·rate²).
    t += sample_gamma(burstiness, rng) / (rate * burstiness);
  }
  return times;
}

int64_t LengthDistribution::sample(Rng& rng) const {
  double x = value;
  if (kind == Kind::Uniform) x = std::floor(low + rng.uniform() * (high - low + 1));
  if (kind == Kind::Normal) x = std::round(mean + stdev * sample_standard_normal(rng));
  return std::clamp<int64_t>(static_cast<int64_t>(x), min, max);
}

int64_t LengthDistribution::upper_bound() const {
  switch (kind) {
    case Kind::Fixed: return static_cast<int64_t>(value);
    case Kind::Uniform: return static_cast<int64_t>(high);
    case Kind::Normal: return max;
  }
  return max;
}

void LengthDistribution::validate(const std::string& source, const std::string& key) const {
  if (min < 1 || max < min || max > kMaxRequestTokens)
    fail("{}: {}: bounds must satisfy 1 <= min <= max <= {} (got min {}, max {})", source, key, kMaxRequestTokens, min, max);
  auto integer_in_bounds = [&](const char* field, double x) {
    if (!std::isfinite(x) || x != std::floor(x) || x < static_cast<double>(min) || x > static_cast<double>(max))
      fail("{}: {}: {} must be an integer in [{}, {}] (got {})", source, key, field, min, max, x);
  };
  switch (kind) {
    case Kind::Fixed: integer_in_bounds("the length", value); break;
    case Kind::Uniform:
      integer_in_bounds("low", low);
      integer_in_bounds("high", high);
      if (low > high) fail("{}: {}: low {} exceeds high {}", source, key, low, high);
      break;
    case Kind::Normal:
      if (!std::isfinite(mean) || !std::isfinite(stdev) || stdev < 0 || std::fabs(mean) > static_cast<double>(kMaxRequestTokens))
        fail("{}: {}: mean must be finite within ±{} and stdev finite and >= 0 (got mean {}, stdev {})", source, key,
             kMaxRequestTokens, mean, stdev);
      break;
  }
}

std::string LengthDistribution::describe() const {
  switch (kind) {
    case Kind::Fixed: return fmt::format("{}", value);
    case Kind::Uniform: return fmt::format("U[{}, {}]", low, high);
    case Kind::Normal: return fmt::format("N({}, {})", mean, stdev);
  }
  return "?";
}

nlohmann::json LengthDistribution::to_json() const {
  switch (kind) {
    case Kind::Fixed: return {{"dist", "fixed"}, {"value", value}};
    case Kind::Uniform: return {{"dist", "uniform"}, {"low", low}, {"high", high}};
    case Kind::Normal: return {{"dist", "normal"}, {"mean", mean}, {"stdev", stdev}, {"min", min}, {"max", max}};
  }
  return nullptr;
}

const char* arrival_mode_name(ArrivalMode mode) {
  return mode == ArrivalMode::Offline ? "offline" : mode == ArrivalMode::Closed ? "closed" : "poisson";
}

std::string SweepPoint::label() const {
  if (mode == ArrivalMode::Closed) return fmt::format("concurrency={}", concurrency);
  if (mode == ArrivalMode::Poisson) return fmt::format("rate={}", request_rate);
  return "offline";
}

std::vector<SweepPoint> sweep_points(const WorkloadSpec& spec) {
  std::vector<SweepPoint> points;
  if (spec.arrival == ArrivalMode::Offline) points.push_back({ArrivalMode::Offline});
  for (auto c : spec.concurrency) if (spec.arrival == ArrivalMode::Closed) points.push_back({ArrivalMode::Closed, c});
  for (auto r : spec.request_rate) if (spec.arrival == ArrivalMode::Poisson) points.push_back({ArrivalMode::Poisson, 0, r});
  return points;
}

namespace {

// Frequent English words: seeded "text" prompts tokenize like prose.
constexpr const char* kWords[] = {
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with", "as",
    "I", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "word", "but", "what", "some",
    "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an", "each",
    "she", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would",
    "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day",
    "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my", "over", "know", "water", "than",
    "call", "first", "who", "may", "down", "side", "been", "now", "find", "model", "inference", "latency", "memory",
    "token", "batch", "cache", "server", "request", "engine", "kernel", "throughput", "energy", "benchmark"};

std::vector<int32_t> text_prompt(int64_t length, Rng& rng, const tokenizer::Tokenizer& tok) {
  std::string text;
  std::vector<int32_t> ids;
  while (static_cast<int64_t>(ids.size()) < length) {
    for (int i = 0; i < 16; ++i) {
      if (!text.empty()) text += rng.uniform() < 0.08 ? ". " : " ";
      text += kWords[rng.next_u64() % std::size(kWords)];
    }
    ids = tok.encode(text, /*add_special_tokens=*/true);
  }
  ids.resize(static_cast<size_t>(length));
  return ids;
}

// "copy": a passage, then its opening again, so a model that copies continues the passage — the
// summarization-like workload prompt-lookup (n-gram) speculation is for. The passage is a window of
// the dataset text at a seeded offset (any text file), or seeded words without one. The repeated
// opening is a quarter of the prompt; the output length is the workload's.
std::vector<int32_t> copy_prompt(int64_t length, Rng& rng, const tokenizer::Tokenizer& tok, const std::string& text) {
  const std::vector<int32_t> specials = tok.encode("", /*add_special_tokens=*/true);
  const int64_t repeat = std::max<int64_t>(1, length / 4);
  const int64_t body = std::max<int64_t>(1, length - repeat - static_cast<int64_t>(specials.size()));
  std::vector<int32_t> passage;
  if (text.empty()) {
    passage = text_prompt(body + 1, rng, tok);
    passage.erase(passage.begin(), passage.begin() + static_cast<std::ptrdiff_t>(std::min(specials.size(), passage.size())));
  } else {
    // A window of about 8 bytes per wanted token (tokens are rarely longer), widened until it covers the body.
    for (size_t window = static_cast<size_t>(body) * 8;; window *= 2) {
      const size_t span = std::min(window, text.size());
      const size_t start = text.size() > span ? rng.next_u64() % (text.size() - span + 1) : 0;
      passage = tok.encode(text.substr(start, span), /*add_special_tokens=*/false);
      if (static_cast<int64_t>(passage.size()) >= body || span == text.size()) break;
    }
    if (passage.empty()) fail("copy prompts: the dataset text encodes to no tokens");
  }
  passage.resize(static_cast<size_t>(std::min<int64_t>(body, static_cast<int64_t>(passage.size()))));
  std::vector<int32_t> ids = specials;
  ids.insert(ids.end(), passage.begin(), passage.end());
  for (int64_t k = 0; static_cast<int64_t>(ids.size()) < length; ++k) ids.push_back(passage[static_cast<size_t>(k) % passage.size()]);
  ids.resize(static_cast<size_t>(length));  // prompts shorter than the specials + one token
  return ids;
}

struct DatasetEntry {
  std::string prompt;
  std::optional<int64_t> output_len;     // jsonl
  std::optional<std::string> reference;  // sharegpt: the reply whose length sets the output
};

std::vector<DatasetEntry> read_dataset(const WorkloadSpec& spec) {
  const std::string text = read_text_file(spec.dataset);
  std::vector<DatasetEntry> entries;
  if (spec.prompt_source == "jsonl") {
    std::istringstream in(text);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto j = parse_json_or_discarded(line, fmt::format("{}:{}", spec.dataset, number));
      if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
        fail("{}:{}: expected {{\"prompt\": string, \"output_len\": integer}}", spec.dataset, number);
      DatasetEntry e{j["prompt"].get<std::string>(), std::nullopt, std::nullopt};
      if (j.contains("output_len")) {
        if (!j["output_len"].is_number_integer() || j["output_len"].get<int64_t>() < 1)
          fail("{}:{}: output_len must be a positive integer", spec.dataset, number);
        e.output_len = j["output_len"].get<int64_t>();
      }
      entries.push_back(std::move(e));
    }
  } else {
    auto root = parse_json_or_discarded(text, spec.dataset);
    if (root.is_discarded() || !root.is_array()) fail("{}: a ShareGPT file is a JSON array of conversations", spec.dataset);
    for (const auto& item : root) {
      // The first human turn and the first reply after it; conversations without both are skipped (as vLLM).
      if (!item.is_object() || !item.contains("conversations") || !item["conversations"].is_array()) continue;
      const auto& turns = item["conversations"];
      if (turns.size() < 2 || !turns[0].is_object() || !turns[1].is_object()) continue;
      if (!turns[0].contains("value") || !turns[1].contains("value") || !turns[0]["value"].is_string() ||
          !turns[1]["value"].is_string())
        continue;
      entries.push_back({turns[0]["value"].get<std::string>(), std::nullopt, turns[1]["value"].get<std::string>()});
    }
  }
  if (entries.empty()) fail("{}: no usable prompts", spec.dataset);
  return entries;
}

}  // namespace

std::vector<BenchRequest> make_requests(const WorkloadSpec& spec, int64_t vocab_size, const tokenizer::Tokenizer* tok) {
  Rng rng(spec.seed);
  const int64_t total = spec.warmup_requests + spec.num_requests;
  if (spec.prompt_source != "random" && !tok)
    fail("workload: prompts '{}' need a tokenizer (a model directory with tokenizer.json, or a preset)", spec.prompt_source);
  std::vector<DatasetEntry> dataset;
  if (spec.prompt_source == "sharegpt" || spec.prompt_source == "jsonl") {
    dataset = read_dataset(spec);
    // A seeded shuffle, then entries in turn (cycling if the file is shorter than the run).
    for (size_t i = dataset.size(); i > 1; --i) std::swap(dataset[i - 1], dataset[rng.next_u64() % i]);
  }
  std::string copy_text;
  if (spec.prompt_source == "copy" && !spec.dataset.empty()) copy_text = read_text_file(spec.dataset);
  std::vector<BenchRequest> requests;
  for (int64_t i = 0; i < total; ++i) {
    BenchRequest r;
    r.warmup = i < spec.warmup_requests;
    if (!dataset.empty()) {
      const DatasetEntry& e = dataset[static_cast<size_t>(i) % dataset.size()];
      r.prompt_ids = tok->encode(e.prompt, /*add_special_tokens=*/true);
      int64_t output = e.output_len ? *e.output_len
                       : e.reference ? static_cast<int64_t>(tok->encode(*e.reference, false).size())
                                     : spec.output_len.sample(rng);
      r.output_len = static_cast<int32_t>(std::max<int64_t>(1, output));
      if (r.prompt_ids.empty()) r.prompt_ids.push_back(0);
    } else {
      const int64_t input = spec.input_len.sample(rng);
      r.output_len = static_cast<int32_t>(spec.output_len.sample(rng));
      if (spec.prompt_source == "text") {
        r.prompt_ids = text_prompt(input, rng, *tok);
      } else if (spec.prompt_source == "copy") {
        r.prompt_ids = copy_prompt(input, rng, *tok, copy_text);
      } else {
        for (int64_t k = 0; k < input; ++k) r.prompt_ids.push_back(static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(vocab_size)));
      }
    }
    requests.push_back(std::move(r));
  }
  return requests;
}

namespace {

class YamlReader {
 public:
  YamlReader(const YAML::Node& node, std::string source) : node_(node), source_(std::move(source)) {}
  [[noreturn]] void fail_key(const std::string& key, const std::string& what) const {
    fail("{}: '{}' {}", source_, key, what);
  }
  template <typename T>
  T get(const YAML::Node& node, const std::string& key, const char* expected) const {
    try {
      return node.as<T>();
    } catch (const YAML::Exception&) {
      fail_key(key, fmt::format("must be {}", expected));
    }
  }
  LengthDistribution length(const YAML::Node& node, const std::string& key) const {
    LengthDistribution d;
    if (node.IsScalar()) {
      d.value = static_cast<double>(get<int64_t>(node, key, "an integer or a {dist: ...} map"));
    } else if (node.IsMap()) {
      std::string dist = node["dist"] ? get<std::string>(node["dist"], key + ".dist", "a string") : "fixed";
      auto number = [&](const char* field) {
        if (!node[field]) fail_key(key, fmt::format("needs '{}' for dist {}", field, dist));
        return get<double>(node[field], key + "." + field, "a number");
      };
      if (dist == "fixed") {
        d.value = number("value");
      } else if (dist == "uniform") {
        d.kind = LengthDistribution::Kind::Uniform;
        d.low = number("low");
        d.high = number("high");
      } else if (dist == "normal") {
        d.kind = LengthDistribution::Kind::Normal;
        d.mean = number("mean");
        d.stdev = number("stdev");
      } else {
        fail_key(key + ".dist", fmt::format("must be fixed, uniform or normal (got '{}')", dist));
      }
      if (node["min"]) d.min = get<int64_t>(node["min"], key + ".min", "an integer");
      if (node["max"]) d.max = get<int64_t>(node["max"], key + ".max", "an integer");
    } else {
      fail_key(key, "must be an integer or a {dist: ...} map");
    }
    return d;
  }
  const YAML::Node& node() const { return node_; }
  const std::string& source() const { return source_; }

 private:
  YAML::Node node_;
  std::string source_;
};

}  // namespace

WorkloadSpec WorkloadSpec::from_yaml_file(const std::string& path) {
  YAML::Node root;
  // yaml-cpp parses nested flow collections recursively: bound the nesting (and the size) first.
  const std::string text = read_text_file(path, int64_t{1} << 20);
  check_json_depth(text, path, 32);
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail("{}: malformed YAML at line {}, column {}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
  if (!root.IsMap()) fail("{}: a scenario must be a YAML map", path);
  YamlReader reader(root, path);
  WorkloadSpec spec;
  static const char* kKeys[] = {"name", "num_requests", "warmup_requests", "input_len", "output_len", "ignore_eos",
                                "prompts", "dataset", "arrival", "concurrency", "request_rate", "burstiness", "seed"};
  for (const auto& entry : root) {
    std::string key = entry.first.as<std::string>();
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys))
      fail("{}: unknown key '{}' (known: name, num_requests, warmup_requests, input_len, output_len, ignore_eos, "
           "prompts, dataset, arrival, concurrency, request_rate, burstiness, seed)", path, key);
  }
  if (root["name"]) spec.name = reader.get<std::string>(root["name"], "name", "a string");
  if (root["num_requests"]) spec.num_requests = reader.get<int64_t>(root["num_requests"], "num_requests", "an integer");
  if (root["warmup_requests"]) spec.warmup_requests = reader.get<int64_t>(root["warmup_requests"], "warmup_requests", "an integer");
  if (root["input_len"]) spec.input_len = reader.length(root["input_len"], "input_len");
  if (root["output_len"]) spec.output_len = reader.length(root["output_len"], "output_len");
  if (root["ignore_eos"]) spec.ignore_eos = reader.get<bool>(root["ignore_eos"], "ignore_eos", "true or false");
  if (root["prompts"]) spec.prompt_source = reader.get<std::string>(root["prompts"], "prompts", "a string");
  if (root["dataset"]) {
    spec.dataset = reader.get<std::string>(root["dataset"], "dataset", "a file path");
    // Relative paths are relative to the scenario file.
    if (!spec.dataset.empty() && spec.dataset[0] != '/')
      spec.dataset = (std::filesystem::path(path).parent_path() / spec.dataset).string();
  }
  if (root["arrival"]) {
    std::string mode = reader.get<std::string>(root["arrival"], "arrival", "a string");
    if (mode == "offline") spec.arrival = ArrivalMode::Offline;
    else if (mode == "closed") spec.arrival = ArrivalMode::Closed;
    else if (mode == "poisson") spec.arrival = ArrivalMode::Poisson;
    else reader.fail_key("arrival", fmt::format("must be offline, closed or poisson (got '{}')", mode));
  }
  auto list = [&](const char* key, auto& out) {
    const YAML::Node node = root[key];
    if (!node) return;
    using T = typename std::decay_t<decltype(out)>::value_type;
    if (node.IsSequence()) for (const auto& item : node) out.push_back(reader.get<T>(item, key, "a number or a list of numbers"));
    else out.push_back(reader.get<T>(node, key, "a number or a list of numbers"));
  };
  list("concurrency", spec.concurrency);
  list("request_rate", spec.request_rate);
  if (root["burstiness"]) spec.burstiness = reader.get<double>(root["burstiness"], "burstiness", "a number");
  if (root["seed"]) {
    const int64_t seed = reader.get<int64_t>(root["seed"], "seed", "an integer in [0, 2^63 - 1]");
    if (seed < 0) reader.fail_key("seed", fmt::format("must be in [0, 2^63 - 1] (got {})", seed));
    spec.seed = static_cast<uint64_t>(seed);
  }
  if (root["burstiness"] && spec.arrival != ArrivalMode::Poisson)
    reader.fail_key("burstiness", "applies only to arrival poisson");
  spec.validate(path);
  return spec;
}

void WorkloadSpec::validate(const std::string& source) const {
  if (num_requests < 1 || num_requests > kMaxNumRequests)
    fail("{}: num_requests must be in [1, {}] (got {})", source, kMaxNumRequests, num_requests);
  if (warmup_requests < 0 || warmup_requests > kMaxNumRequests)
    fail("{}: warmup_requests must be in [0, {}] (got {})", source, kMaxNumRequests, warmup_requests);
  if (seed > static_cast<uint64_t>(INT64_MAX)) fail("{}: seed must be in [0, 2^63 - 1] (got {})", source, seed);
  // Settings of another arrival process would be recorded without having run: refuse them.
  if (arrival != ArrivalMode::Closed && !concurrency.empty())
    fail("{}: concurrency applies only to arrival closed (arrival is {})", source, arrival_mode_name(arrival));
  if (arrival != ArrivalMode::Poisson && !request_rate.empty())
    fail("{}: request_rate applies only to arrival poisson (arrival is {})", source, arrival_mode_name(arrival));
  if (arrival != ArrivalMode::Poisson && burstiness != 1.0)
    fail("{}: burstiness applies only to arrival poisson (arrival is {})", source, arrival_mode_name(arrival));
  if (!dataset.empty() && !prompts_read_dataset(prompt_source))
    fail("{}: dataset applies only to prompts sharegpt, jsonl or copy (prompts are {})", source, prompt_source);
  if (prompt_source != "random" && prompt_source != "text" && prompt_source != "copy" && prompt_source != "sharegpt" &&
      prompt_source != "jsonl")
    fail("{}: prompts must be random, text, copy, sharegpt or jsonl (got '{}')", source, prompt_source);
  if ((prompt_source == "sharegpt" || prompt_source == "jsonl") && dataset.empty())
    fail("{}: prompts {} needs 'dataset' (a file path)", source, prompt_source);
  if (arrival == ArrivalMode::Closed && concurrency.empty()) fail("{}: arrival closed needs 'concurrency'", source);
  if (arrival == ArrivalMode::Poisson && request_rate.empty()) fail("{}: arrival poisson needs 'request_rate'", source);
  for (auto c : concurrency)
    if (c < 1 || c > kMaxConcurrency) fail("{}: concurrency must be in [1, {}] (got {})", source, kMaxConcurrency, c);
  for (auto r : request_rate)
    if (!(r >= kMinRequestRate && r <= kMaxRequestRate))
      fail("{}: request_rate must be in [{:g}, {:g}] requests/s (got {})", source, kMinRequestRate, kMaxRequestRate, r);
  if (!(burstiness >= kMinBurstiness && burstiness <= kMaxBurstiness))
    fail("{}: burstiness must be in [{:g}, {:g}] (got {})", source, kMinBurstiness, kMaxBurstiness, burstiness);
  input_len.validate(source, "input_len");
  output_len.validate(source, "output_len");
}

nlohmann::json WorkloadSpec::to_json() const {
  return {{"name", name},
          {"num_requests", num_requests},
          {"warmup_requests", warmup_requests},
          {"input_len", input_len.to_json()},
          {"output_len", output_len.to_json()},
          {"ignore_eos", ignore_eos},
          {"prompts", prompt_source},
          {"dataset", dataset.empty() ? nlohmann::json(nullptr) : nlohmann::json(dataset)},
          {"arrival", arrival_mode_name(arrival)},
          {"concurrency", concurrency},
          {"request_rate", request_rate},
          {"burstiness", burstiness},
          {"seed", seed}};
}

}  // namespace iol::bench
