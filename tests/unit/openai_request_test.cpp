// The OpenAI request parser: fields map to SamplingParams with vLLM's semantics, and every bad
// value is an ApiError (400) naming its field.
#include <gtest/gtest.h>

#include "iol/server/api_error.hpp"
#include "iol/server/openai_request.hpp"

namespace iol::server {
namespace {

GenerationRequest parse(const std::string& body, Endpoint endpoint = Endpoint::Completions) {
  return parse_generation_request(parse_json_body(body), endpoint);
}

TEST(OpenAiRequest, FieldsMapToSamplingParams) {
  auto r = parse(R"({"model": "m", "prompt": [[1, 2], [3]], "max_tokens": 7, "temperature": 0.5, "top_p": 0.9,
                     "top_k": -1, "min_p": 0.1, "presence_penalty": 1, "frequency_penalty": -1, "repetition_penalty": 1.2,
                     "seed": -1, "n": 2, "min_tokens": 3, "ignore_eos": true, "stop": "x", "stop_token_ids": [5],
                     "logprobs": 3, "stream": true, "stream_options": {"include_usage": true}, "unknown_field": {"a": 1}})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_TRUE(r.prompts[0].is_ids);
  EXPECT_EQ(r.prompts[1].ids, std::vector<int32_t>{3});
  EXPECT_EQ(*r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.params.temperature, 0.5f);
  EXPECT_EQ(r.params.top_k, 0);
  EXPECT_EQ(*r.params.seed, UINT64_MAX);
  EXPECT_EQ(r.params.n, 2);
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r.params.logprobs, 3);
  EXPECT_TRUE(r.want_logprobs && r.stream && r.include_usage && r.params.ignore_eos);

  auto chat = parse(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
                        "max_completion_tokens": 4, "logprobs": true, "top_logprobs": 2, "tools": [{"type": "function"}],
                        "chat_template_kwargs": {"enable_thinking": false}})", Endpoint::ChatCompletions);
  EXPECT_EQ(chat.chat.messages[0]["content"], "ab");
  EXPECT_EQ(*chat.max_tokens, 4);
  EXPECT_EQ(chat.params.logprobs, 2);
  EXPECT_EQ(chat.chat.tools.size(), 1u);
  EXPECT_EQ(chat.chat.template_kwargs["enable_thinking"], false);
  auto hidden = parse(R"({"messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function"}], "tool_choice": "none"})",
                      Endpoint::ChatCompletions);
  EXPECT_TRUE(hidden.chat.tools.is_null());
}

TEST(OpenAiRequest, BadValuesNameTheirField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"prompt": "a", "temperature": "hot"})", "temperature"}, {R"({"prompt": "a", "temperature": -0.1})", "temperature"},
      {R"({"prompt": "a", "max_tokens": 0})", "max_tokens"},       {R"({"prompt": "a", "max_tokens": 1.5})", "max_tokens"},
      {R"({"prompt": "a", "n": 129})", "n"},                       {R"({"prompt": "a", "seed": "1"})", "seed"},
      {R"({"prompt": "a", "stop": ["a", 1]})", "stop"},            {R"({"prompt": "a", "stop": [""]})", "stop"},
      {R"({"prompt": "a", "stop_token_ids": [-1]})", "stop_token_ids"},
      {R"({"prompt": "a", "min_tokens": 5, "max_tokens": 2})", "min_tokens"},
      {R"({"prompt": "a", "stream_options": {"include_usage": true}})", "stream_options"},
      {R"({"prompt": "a", "echo": true})", "echo"},                {R"({"prompt": "a", "logit_bias": {"1": 2}})", "logit_bias"},
      {R"({"prompt": []})", "prompt"},                             {R"({"prompt": [[]]})", "prompt"},
      {R"({"prompt": "a", "model": 3})", "model"},                 {R"({"prompt": "a", "ignore_eos": 1})", "ignore_eos"},
  };
  for (const auto& [body, param] : cases) {
    try {
      parse(body);
      ADD_FAILURE() << body << " was accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400) << body;
      EXPECT_EQ(e.param(), param) << body << ": " << e.what();
      EXPECT_EQ(e.to_json()["error"]["type"], "invalid_request_error");
    }
  }
  EXPECT_THROW(parse("{\"prompt\": "), ApiError);
  EXPECT_THROW(parse("\"just a string\""), ApiError);
  EXPECT_THROW(parse(R"({"messages": []})", Endpoint::ChatCompletions), ApiError);
  EXPECT_THROW(parse(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", Endpoint::ChatCompletions), ApiError);
}

}  // namespace
}  // namespace iol::server
