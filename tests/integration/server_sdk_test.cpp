// Acceptance 1 of the server: the official OpenAI Node SDK (npm `openai`, pinned in
// tests/openai_sdk/package-lock.json, installed by scripts/install_openai_sdk.sh as a ctest
// fixture) as a real client over loopback. Streaming and plain completions and chat
// completions, tools reaching the template, n > 1, logprobs, stop strings and usage — the tokens
// equal `iol generate` with the same seed. Without node_modules it skips, or fails under CI.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../support/server_process.hpp"
#include "../support/temp_dir.hpp"

namespace iol {
namespace {

using Json = nlohmann::json;

std::string run(const std::string& command) {
  testing::TempDir dir;
  const int status = std::system((command + " >" + dir.str("out") + " 2>" + dir.str("err")).c_str());
  std::ifstream in(dir.str("out")), err(dir.str("err"));
  std::string out(std::istreambuf_iterator<char>(in), {});
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(command + " failed: " + std::string(std::istreambuf_iterator<char>(err), {}) + out);
  return out;
}

std::vector<Json> generate(const std::string& model, const std::string& flags) {
  std::istringstream lines(run(std::string(IOL_BINARY) + " generate --model " + model + " --backend cpu --json " + flags));
  std::vector<Json> out;
  for (std::string line; std::getline(lines, line);) out.push_back(Json::parse(line));
  return out;
}

TEST(OpenAiSdk, NodeClientGetsWhatGenerateGives) {
  const std::filesystem::path sdk_dir = IOL_OPENAI_SDK_DIR;
  if (!std::filesystem::exists(sdk_dir / "node_modules" / "openai" / "package.json")) {
    const std::string why = "the OpenAI Node SDK is not installed in " + sdk_dir.string() +
                            " (scripts/install_openai_sdk.sh needs node, npm and the npm registry)";
    if (std::getenv("CI")) FAIL() << why;
    GTEST_SKIP() << why;
  }
  testing::TempDir dir;
  run(std::string(IOL_BINARY) + " model create --preset tiny --out " + dir.str("tiny"));
  std::ofstream(dir.str("chat.jinja"))
      << "{% if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>{% endif %}"
         "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
  const std::string model = dir.str("tiny");
  // A stop string from the greedy reference, so it does occur.
  const Json greedy = generate(model, "--prompt Hi --max-tokens 24 --temperature 0 --ignore-eos").at(0);
  std::string stop = "x";
  const std::string greedy_text = greedy["text"];
  for (size_t at = 4; at < greedy_text.size(); ++at)
    if (std::isalnum(static_cast<unsigned char>(greedy_text[at]))) {
      stop = greedy_text.substr(at, 1);
      break;
    }

  testing::ServerProcess server("--model " + model + " --backend cpu --api-key k3y --chat-template " + dir.str("chat.jinja"),
                                dir.str("serve.err"));
  std::filesystem::copy_file(std::string(IOL_SOURCE_DIR) + "/tests/openai_sdk/sdk_test.mjs", sdk_dir / "sdk_test.mjs",
                             std::filesystem::copy_options::overwrite_existing);
  const Json out = Json::parse(run("node " + (sdk_dir / "sdk_test.mjs").string() + " " + server.url() + "/v1 k3y '" + stop + "'"));
  SCOPED_TRACE(out.dump().substr(0, 2000));

  const std::string seeded = "--max-tokens 10 --temperature 0.8 --seed 5 --ignore-eos";
  const Json hello = generate(model, "--prompt Hello " + seeded).at(0);
  EXPECT_EQ(out["completion"]["choices"][0]["token_ids"], hello["output_ids"]);
  EXPECT_EQ(out["completion"]["choices"][0]["text"], hello["text"]);
  EXPECT_EQ(out["completion"]["usage"]["completion_tokens"], 10);
  EXPECT_EQ(out["completion"]["usage"]["prompt_tokens"], hello["prompt_ids"].size());
  EXPECT_EQ(out["completion_stream"]["ids"], hello["output_ids"]);
  EXPECT_EQ(out["completion_stream"]["finish"], "length");
  EXPECT_EQ(out["completion_stream"]["usage"]["completion_tokens"], 10);
  EXPECT_EQ(out["completion_stream"]["chunks"], 11);  // 10 tokens + usage

  const auto samples = generate(model, "--prompt-ids 256,72,105 --n 3 --logprobs 2 " + seeded);
  ASSERT_EQ(out["completion_n"]["choices"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out["completion_n"]["choices"][i]["token_ids"], samples[i]["output_ids"]);
    EXPECT_EQ(out["completion_n"]["choices"][i]["logprobs"]["token_logprobs"].size(), 10u);
  }
  EXPECT_EQ(out["completion_n"]["usage"]["completion_tokens"], 30);

  std::ofstream(dir.str("m.json")) << R"([{"role": "user", "content": "What is the weather?"}])";
  std::ofstream(dir.str("t.json"))
      << R"([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}])";
  const Json chat = generate(model, "--messages " + dir.str("m.json") + " --tools " + dir.str("t.json") + " --chat-template " +
                                        dir.str("chat.jinja") + " --logprobs 2 " + seeded).at(0);
  EXPECT_EQ(out["chat"]["choices"][0]["token_ids"], chat["output_ids"]);
  EXPECT_EQ(out["chat"]["choices"][0]["message"]["content"], chat["text"]);
  EXPECT_EQ(out["chat"]["usage"]["prompt_tokens"], chat["prompt_ids"].size());
  ASSERT_EQ(out["chat"]["choices"][0]["logprobs"]["content"].size(), 10u);
  EXPECT_EQ(out["chat"]["choices"][0]["logprobs"]["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_NEAR(out["chat"]["choices"][0]["logprobs"]["content"][0]["logprob"].get<double>(),
              chat["logprobs"][0]["logprob"].get<double>(), 1e-5);
  EXPECT_EQ(out["chat_stream"]["ids"], chat["output_ids"]);
  EXPECT_EQ(out["chat_stream"]["role"], "assistant");
  EXPECT_EQ(out["chat_stream"]["usage"]["total_tokens"], chat["prompt_ids"].size() + 10);

  const Json cut = generate(model, "--prompt Hi --max-tokens 24 --temperature 0 --ignore-eos --stop '" + stop + "'").at(0);
  EXPECT_EQ(out["stop"]["choices"][0]["text"], cut["text"]);
  EXPECT_EQ(out["stop"]["choices"][0]["finish_reason"], cut["finish_reason"]);

  EXPECT_EQ(out["errors"]["bad_temperature"]["status"], 400);
  EXPECT_EQ(out["errors"]["bad_temperature"]["class"], "BadRequestError");
  EXPECT_EQ(out["errors"]["bad_temperature"]["param"], "temperature");
  EXPECT_EQ(out["errors"]["unknown_model"]["status"], 404);
  EXPECT_EQ(out["errors"]["unknown_model"]["class"], "NotFoundError");
  EXPECT_EQ(out["errors"]["wrong_key"]["status"], 401);
  EXPECT_EQ(out["errors"]["wrong_key"]["class"], "AuthenticationError");
  EXPECT_EQ(out["models"], Json::array({"tiny"}));
}

}  // namespace
}  // namespace iol
