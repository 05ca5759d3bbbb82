#include "iol/model/model_config.hpp"

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "iol/core/checked_math.hpp"
#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"

namespace iol::model {

using nlohmann::json;

std::vector<std::string_view> supported_architectures() {
  return {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};
}

namespace {

class ConfigReader {
 public:
  ConfigReader(const json& root, const std::string& source) : root_(root), source_(source) {}

  [[noreturn]] void fail_key(std::string_view key, std::string_view what) const {
    fail("{}: key '{}' {}", source_, key, what);
  }
  bool has(std::string_view key) const {
    auto it = root_.find(key);
    return it != root_.end() && !it->is_null();
  }
  int64_t positive_int(std::string_view key) const {
    if (!has(key)) fail_key(key, "is missing (required)");
    return positive_int_value(key, root_.at(std::string(key)));
  }
  int64_t positive_int_or(std::string_view key, int64_t fallback) const {
    return has(key) ? positive_int(key) : fallback;
  }
  int64_t positive_int_value(std::string_view key, const json& value) const {
    if (!value.is_number_integer() || value.get<int64_t>() <= 0)
      fail_key(key, fmt::format("must be a positive integer (got {})", value.dump()));
    return value.get<int64_t>();
  }
  double positive_number_or(const json& object, std::string_view key, double fallback) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_number() || !(it->get<double>() > 0) || !std::isfinite(it->get<double>()))
      fail_key(key, fmt::format("must be a positive finite number (got {})", it->dump()));
    return it->get<double>();
  }
  bool boolean_or(std::string_view key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& value = root_.at(std::string(key));
    if (!value.is_boolean()) fail_key(key, fmt::format("must be true or false (got {})", value.dump()));
    return value.get<bool>();
  }
  const json& root() const { return root_; }
  const std::string& source() const { return source_; }

 private:
  const json& root_;
  const std::string& source_;
};

std::string read_architecture(const ConfigReader& reader) {
  const json& root = reader.root();
  if (reader.has("architectures")) {
    const json& list = root.at("architectures");
    if (!list.is_array() || list.empty() || !list[0].is_string())
      reader.fail_key("architectures", "must be a non-empty list of strings");
    return list[0].get<std::string>();
  }
  if (reader.has("model_type") && root.at("model_type").is_string()) {
    std::string type = root.at("model_type").get<std::string>();
    if (type == "llama") return "LlamaForCausalLM";
    if (type == "mistral") return "MistralForCausalLM";
    if (type == "qwen2") return "Qwen2ForCausalLM";
    fail("{}: model_type '{}' is not supported (supported: llama, mistral, qwen2)", reader.source(), type);
  }
  fail("{}: neither 'architectures' nor 'model_type' is present; is this a Hugging Face config.json?",
       reader.source());
}

RopeConfig read_rope(const ConfigReader& reader) {
  const json& root = reader.root();
  RopeConfig rope;
  // transformers 5.x: rope_parameters holds rope_theta and the scaling; 4.x: rope_theta + rope_scaling.
  const json* scaling = nullptr;
  std::string_view scaling_key;
  if (reader.has("rope_parameters")) {
    scaling = &root.at("rope_parameters");
    scaling_key = "rope_parameters";
  } else if (reader.has("rope_scaling")) {
    scaling = &root.at("rope_scaling");
    scaling_key = "rope_scaling";
  }
  rope.theta = reader.positive_number_or(root, "rope_theta", 10000.0);
  if (!scaling) return rope;
  if (!scaling->is_object()) reader.fail_key(scaling_key, "must be an object");
  rope.theta = reader.positive_number_or(*scaling, "rope_theta", rope.theta);
  std::string type = "default";
  for (const char* type_key : {"rope_type", "type"}) {
    auto it = scaling->find(type_key);
    if (it != scaling->end() && !it->is_null()) {
      if (!it->is_string()) reader.fail_key(scaling_key, fmt::format("'{}' must be a string", type_key));
      type = it->get<std::string>();
      break;
    }
  }
  if (type == "default") return rope;
  if (type == "linear") {
    rope.type = RopeType::Linear;
    rope.factor = reader.positive_number_or(*scaling, "factor", 0.0);
    if (rope.factor <= 0) reader.fail_key(scaling_key, "needs 'factor' for rope type linear");
    return rope;
  }
  if (type == "llama3") {
    rope.type = RopeType::Llama3;
    rope.factor = reader.positive_number_or(*scaling, "factor", 0.0);
    rope.low_freq_factor = reader.positive_number_or(*scaling, "low_freq_factor", 0.0);
    rope.high_freq_factor = reader.positive_number_or(*scaling, "high_freq_factor", 0.0);
    rope.original_max_position_embeddings =
        static_cast<int64_t>(reader.positive_number_or(*scaling, "original_max_position_embeddings", 0.0));
    if (rope.factor <= 0 || rope.low_freq_factor <= 0 || rope.high_freq_factor <= 0 ||
        rope.original_max_position_embeddings <= 0)
      reader.fail_key(scaling_key,
                      "needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings "
                      "for rope type llama3");
    if (rope.high_freq_factor <= rope.low_freq_factor)
      reader.fail_key(scaling_key, "needs high_freq_factor > low_freq_factor for rope type llama3");
    return rope;
  }
  fail("{}: rope type '{}' in '{}' is not supported (supported: default, linear, llama3)", reader.source(),
       type, scaling_key);
}

std::vector<int64_t> read_sliding_windows(const ConfigReader& reader, const std::string& architecture,
                                          int64_t num_layers) {
  const json& root = reader.root();
  std::vector<int64_t> windows(static_cast<size_t>(num_layers), 0);
  int64_t window = reader.has("sliding_window") ? reader.positive_int("sliding_window") : 0;
  if (reader.has("layer_types")) {
    const json& types = root.at("layer_types");
    if (!types.is_array() || static_cast<int64_t>(types.size()) != num_layers)
      reader.fail_key("layer_types", fmt::format("must be a list of {} entries (num_hidden_layers)", num_layers));
    for (size_t i = 0; i < types.size(); ++i) {
      std::string type = types[i].is_string() ? types[i].get<std::string>() : types[i].dump();
      if (type == "sliding_attention") {
        if (window == 0) reader.fail_key("layer_types", "has sliding_attention layers but no sliding_window");
        windows[i] = window;
      } else if (type != "full_attention") {
        reader.fail_key("layer_types", fmt::format("entry {} is '{}' (supported: full_attention, "
                                                   "sliding_attention)", i, type));
      }
    }
    return windows;
  }
  if (window == 0) return windows;
  if (architecture == "MistralForCausalLM") {
    std::fill(windows.begin(), windows.end(), window);
  } else if (architecture == "Qwen2ForCausalLM" && reader.boolean_or("use_sliding_window", false)) {
    // transformers: layers from max_window_layers on use the window.
    int64_t first = reader.has("max_window_layers") ? reader.positive_int("max_window_layers") : num_layers;
    for (int64_t i = first; i < num_layers; ++i) windows[static_cast<size_t>(i)] = window;
  }
  return windows;
}

std::vector<int64_t> read_eos(const ConfigReader& reader) {
  if (!reader.has("eos_token_id")) return {};
  const json& value = reader.root().at("eos_token_id");
  std::vector<int64_t> ids;
  if (value.is_number_integer()) {
    ids.push_back(value.get<int64_t>());
  } else if (value.is_array()) {
    for (const auto& id : value) {
      if (!id.is_number_integer()) reader.fail_key("eos_token_id", "must be an integer or a list of integers");
      ids.push_back(id.get<int64_t>());
    }
  } else {
    reader.fail_key("eos_token_id", "must be an integer or a list of integers");
  }
  return ids;
}

}  // namespace

static ModelConfig parse_config(const json& root, const std::string& source);

ModelConfig ModelConfig::from_json(const json& root, const std::string& source) {
  // Type errors the checks below do not anticipate still become one-line iol::Errors.
  try {
    return parse_config(root, source);
  } catch (const json::exception& error) {
    fail("{}: unexpected value: {}", source, json_error_text(error));
  }
}

static ModelConfig parse_config(const json& root, const std::string& source) {
  if (!root.is_object()) fail("{}: expected a JSON object at the top level", source);
  ConfigReader reader(root, source);
  ModelConfig config;
  config.architecture = read_architecture(reader);
  bool supported = false;
  for (auto name : supported_architectures()) supported |= (name == config.architecture);
  if (!supported)
    fail("{}: architecture '{}' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
         "Qwen2ForCausalLM)", source, config.architecture);

  config.vocab_size = reader.positive_int("vocab_size");
  config.hidden_size = reader.positive_int("hidden_size");
  config.intermediate_size = reader.positive_int("intermediate_size");
  config.num_hidden_layers = reader.positive_int("num_hidden_layers");
  config.num_attention_heads = reader.positive_int("num_attention_heads");
  config.num_key_value_heads = reader.positive_int_or("num_key_value_heads", config.num_attention_heads);
  if (reader.has("head_dim")) {
    config.head_dim = reader.positive_int("head_dim");
  } else {
    if (config.hidden_size % config.num_attention_heads != 0)
      fail("{}: hidden_size {} is not divisible by num_attention_heads {} and no head_dim is given", source,
           config.hidden_size, config.num_attention_heads);
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  config.max_position_embeddings = reader.positive_int_or("max_position_embeddings", 2048);
  config.rms_norm_eps = reader.positive_number_or(root, "rms_norm_eps", 1e-6);
  config.rope = read_rope(reader);
  config.tie_word_embeddings = reader.boolean_or("tie_word_embeddings", false);
  if (config.architecture == "Qwen2ForCausalLM") {
    config.qkv_bias = true;
  } else if (config.architecture == "LlamaForCausalLM") {
    config.qkv_bias = config.o_bias = reader.boolean_or("attention_bias", false);
    config.mlp_bias = reader.boolean_or("mlp_bias", false);
  }
  config.layer_sliding_window = read_sliding_windows(reader, config.architecture, config.num_hidden_layers);
  if (reader.has("bos_token_id")) {
    const json& bos = root.at("bos_token_id");
    if (!bos.is_number_integer()) reader.fail_key("bos_token_id", "must be an integer");
    config.bos_token_id = bos.get<int64_t>();
  }
  config.eos_token_ids = read_eos(reader);
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (reader.has(key) && root.at(key).is_string()) {
      auto dtype = dtype_from_user_name(root.at(key).get<std::string>());
      if (!dtype) reader.fail_key(key, fmt::format("names an unsupported dtype {} (supported: float32, "
                                                   "float16, bfloat16)", root.at(key).dump()));
      config.dtype = *dtype;
    }
  }
  config.validate(source);
  return config;
}

ModelConfig ModelConfig::from_json_text(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    // Re-parse with exceptions only to get the position of the error.
    try {
      json ignored = json::parse(text.begin(), text.end());
      (void)ignored;
    } catch (const json::parse_error& error) {
      fail("{}: malformed JSON at byte {}: {}", source, error.byte, json_error_text(error));
    } catch (const json::exception& error) {
      fail("{}: malformed JSON: {}", source, json_error_text(error));
    }
    fail("{}: malformed JSON", source);
  }
  return from_json(root, source);
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  if (!std::filesystem::exists(path))
    fail("{}: cannot open (is this a Hugging Face model directory with a config.json?)", path);
  return from_json_text(read_text_file(path, int64_t{64} << 20), path);
}

void ModelConfig::validate(const std::string& source) const {
  // Upper bounds well above every published model, so that sizes derived from the shape (weights,
  // KV bytes, activations) are computed without overflow and fail as "too large", not as UB.
  const struct {
    const char* key;
    int64_t value, max;
  } bounds[] = {{"vocab_size", vocab_size, kMaxVocabSize},
                {"hidden_size", hidden_size, int64_t{1} << 17},
                {"intermediate_size", intermediate_size, int64_t{1} << 20},
                {"num_hidden_layers", num_hidden_layers, 1024},
                {"num_attention_heads", num_attention_heads, 1024},
                {"num_key_value_heads", num_key_value_heads, 1024},
                {"head_dim", head_dim, 1024},
                {"max_position_embeddings", max_position_embeddings, kMaxModelLen}};
  for (const auto& b : bounds)
    if (b.value < 1 || b.value > b.max) fail("{}: key '{}' must be in [1, {}] (got {})", source, b.key, b.max, b.value);
  if (num_key_value_heads > num_attention_heads)
    fail("{}: num_key_value_heads {} exceeds num_attention_heads {}", source, num_key_value_heads, num_attention_heads);
  if (checked_product({num_attention_heads, head_dim}, "config") > (int64_t{1} << 17))
    fail("{}: num_attention_heads × head_dim = {} exceeds {}", source, num_attention_heads * head_dim, int64_t{1} << 17);
  if (num_attention_heads % num_key_value_heads != 0)
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", source, num_attention_heads,
         num_key_value_heads);
  if (head_dim % 2 != 0) fail("{}: head_dim {} must be even for rotary embeddings", source, head_dim);
  for (auto id : eos_token_ids)
    if (id < 0 || id >= vocab_size) fail("{}: eos_token_id {} is outside the vocabulary [0, {})", source, id, vocab_size);
  if (bos_token_id && (*bos_token_id < 0 || *bos_token_id >= vocab_size))
    fail("{}: bos_token_id {} is outside the vocabulary [0, {})", source, *bos_token_id, vocab_size);
}

int64_t ModelConfig::num_parameters() const {
  int64_t attention = hidden_size * (q_size() + 2 * kv_size()) + q_size() * hidden_size;
  if (qkv_bias) attention += q_size() + 2 * kv_size();
  if (o_bias) attention += hidden_size;
  int64_t mlp = 3 * hidden_size * intermediate_size + (mlp_bias ? 2 * intermediate_size + hidden_size : 0);
  int64_t per_layer = attention + mlp + 2 * hidden_size;
  int64_t embeddings = vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2);
  return num_hidden_layers * per_layer + embeddings + hidden_size;
}

json ModelConfig::to_json() const {
  json root;
  root["architectures"] = {architecture};
  root["model_type"] = architecture == "Qwen2ForCausalLM"     ? "qwen2"
                       : architecture == "MistralForCausalLM" ? "mistral"
                                                              : "llama";
  root["vocab_size"] = vocab_size;
  root["hidden_size"] = hidden_size;
  root["intermediate_size"] = intermediate_size;
  root["num_hidden_layers"] = num_hidden_layers;
  root["num_attention_heads"] = num_attention_heads;
  root["num_key_value_heads"] = num_key_value_heads;
  root["head_dim"] = head_dim;
  root["max_position_embeddings"] = max_position_embeddings;
  root["rms_norm_eps"] = rms_norm_eps;
  root["rope_theta"] = rope.theta;
  if (rope.type == RopeType::Linear) {
    root["rope_scaling"] = {{"rope_type", "linear"}, {"factor", rope.factor}};
  } else if (rope.type == RopeType::Llama3) {
    root["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", rope.factor},
                            {"low_freq_factor", rope.low_freq_factor},
                            {"high_freq_factor", rope.high_freq_factor},
                            {"original_max_position_embeddings", rope.original_max_position_embeddings}};
  } else {
    root["rope_scaling"] = nullptr;
  }
  root["tie_word_embeddings"] = tie_word_embeddings;
  if (architecture == "LlamaForCausalLM") {
    root["attention_bias"] = qkv_bias;
    root["mlp_bias"] = mlp_bias;
  }
  int64_t window = 0;
  for (auto w : layer_sliding_window) window = std::max(window, w);
  if (architecture == "MistralForCausalLM") root["sliding_window"] = window ? json(window) : json(nullptr);
  if (architecture == "Qwen2ForCausalLM") {
    int64_t first_windowed = 0;
    while (first_windowed < num_hidden_layers && layer_sliding_window[first_windowed] == 0) ++first_windowed;
    root["use_sliding_window"] = window != 0;
    root["sliding_window"] = window ? json(window) : json(nullptr);
    root["max_window_layers"] = first_windowed;
  }
  if (bos_token_id) root["bos_token_id"] = *bos_token_id;
  if (eos_token_ids.size() == 1) root["eos_token_id"] = eos_token_ids[0];
  else if (!eos_token_ids.empty()) root["eos_token_id"] = eos_token_ids;
  root["hidden_act"] = "silu";
  root["torch_dtype"] = dtype == DType::F32 ? "float32" : dtype == DType::F16 ? "float16" : "bfloat16";
  return root;
}

}  // namespace iol::model
