// Chat-template rendering (and render + encode) per conversation with the real Qwen3 and Llama 3
// templates: a 20-message agent conversation (system, tools, tool calls, tool results, reasoning).
// This is per-request work on the serving path, before prefill.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include "iol/tokenizer/chat_template.hpp"
#include "iol/tokenizer/tokenizer.hpp"
#include "micro_inputs.hpp"

namespace {

using nlohmann::ordered_json;

iol::tokenizer::ChatRequest agent_conversation() {
  ordered_json messages = ordered_json::array();
  messages.push_back({{"role", "system"}, {"content", "You are a careful assistant that uses tools when they help."}});
  for (int turn = 0; turn < 4; ++turn) {
    messages.push_back({{"role", "user"}, {"content", "Turn " + std::to_string(turn) + ": what is the weather in Paris and Rome?"}});
    messages.push_back({{"role", "assistant"},
                        {"content", "<think>\nTwo cities, two calls.\n</think>\n\n"},
                        {"tool_calls", {{{"type", "function"}, {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}},
                                        {{"type", "function"}, {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Rome"}}}}}}}}});
    messages.push_back({{"role", "tool"}, {"content", "{\"temp\": 21.5, \"sky\": \"clear\"}"}});
    messages.push_back({{"role", "tool"}, {"content", "{\"temp\": 25.0, \"sky\": \"sunny\"}"}});
    messages.push_back({{"role", "assistant"}, {"content", "Paris is 21.5°C and clear; Rome is 25°C and sunny."}});
  }
  iol::tokenizer::ChatRequest request;
  request.messages = messages;
  request.tools = ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Current weather for a city", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
      "required": ["city"]}}}])");
  return request;
}

void render(benchmark::State& state, const char* name, bool encode) {
  const std::string dir = iol::micro::tokenizers_dir + "/" + name;
  auto chat_template = iol::tokenizer::ChatTemplate::from_directory(dir);
  auto tokenizer = iol::tokenizer::Tokenizer::from_directory(dir);
  const iol::tokenizer::ChatRequest request = agent_conversation();
  size_t bytes = 0, tokens = 0;
  for (auto _ : state) {
    std::string text = chat_template->render(request);
    bytes = text.size();
    if (encode) {
      auto ids = tokenizer->encode(text, false);
      tokens = ids.size();
      benchmark::DoNotOptimize(ids.data());
    }
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["messages"] = static_cast<double>(request.messages.size());
  state.counters["prompt_bytes"] = static_cast<double>(bytes);
  if (encode) state.counters["prompt_tokens"] = static_cast<double>(tokens);
}

}  // namespace

BENCHMARK_CAPTURE(render, qwen3, "qwen3", false)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK_CAPTURE(render, qwen3_and_encode, "qwen3", true)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK_CAPTURE(render, llama3, "llama3", false)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
