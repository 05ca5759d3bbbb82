// iol serve: an OpenAI-compatible HTTP server (docs/server.md). The engine runs on its own
// thread behind an EngineClient; HTTP runs on a few I/O threads; SIGTERM drains.
#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "iol/backend/backend_factory.hpp"
#include "iol/bench/nvml_sampler.hpp"
#include "iol/cli/commands.hpp"
#include "iol/cli/numeric_flags.hpp"
#include "iol/cli/engine_options.hpp"
#include "iol/cli/model_options.hpp"
#include "iol/cli/tokenizer_loading.hpp"
#include "iol/core/error.hpp"
#include "iol/core/open_files.hpp"
#include "iol/engine/engine.hpp"
#include "iol/engine/engine_client.hpp"
#include "iol/server/http_server.hpp"
#include "iol/server/openai_service.hpp"
#include "iol/tokenizer/chat_template.hpp"

namespace iol::cli {

namespace {

// --max-num-waiting: beyond this a bound is no bound (and the queue would not fit in memory).
constexpr int64_t kMaxNumWaiting = int64_t{1} << 24;

struct ServeOptions {
  ModelOptions model;
  EngineOptions engine;
  server::HttpServerConfig http;
  int64_t port = 8000;
  std::string served_model_name;
  std::string chat_template_file, chat_template_name;
  int64_t max_num_waiting = -1;
  std::string nvml_library = "libnvidia-ml.so.1";
};

void run_serve(ServeOptions& o) {
  if (o.port < 0 || o.port > 65535) throw UsageError(fmt::format("--port must be in [0, 65535] (got {})", o.port));
  if (o.http.max_body_bytes <= 0) throw UsageError("--max-body-bytes must be positive");
  if (o.http.threads <= 0) throw UsageError("--http-threads must be positive");
  if (o.http.shutdown_timeout_s < 0) throw UsageError("--shutdown-timeout must not be negative");
  o.http.port = static_cast<uint16_t>(o.port);
  if (o.http.api_key.empty())
    if (const char* key = std::getenv("IOL_API_KEY")) o.http.api_key = key;

  const model::ModelSource source = o.model.to_source();
  model::LoadedModel loaded = model::load_model(source, /*load_weights=*/false);
  const model::ModelConfig& config = loaded.config;
  auto tokenizer = load_tokenizer(o.model, config);
  std::unique_ptr<tokenizer::ChatTemplate> chat_template;
  if (!o.chat_template_file.empty()) chat_template = tokenizer::ChatTemplate::from_file(o.chat_template_file, o.model.model_dir);
  else if (!o.model.model_dir.empty()) chat_template = tokenizer::ChatTemplate::from_directory(o.model.model_dir, o.chat_template_name);
  std::string name = o.served_model_name;
  if (name.empty())
    name = o.model.model_dir.empty() ? o.model.preset
                                     : std::filesystem::path(o.model.model_dir).lexically_normal().filename().string();
  if (name.empty()) name = std::filesystem::path(o.model.model_dir).lexically_normal().parent_path().filename().string();

  std::unique_ptr<spec::Proposer> proposer = o.engine.make_proposer(config);  // before the target (engine_options.hpp)
  const backend::BackendOptions backend_options = o.engine.to_backend_options(config);
  backend::CreatedBackend created = backend::create_backend(backend_options, source, config);
  engine::EngineConfig engine_config = o.engine.to_config(config, created.backend->kv_cache_spec());
  engine::Engine engine(engine_config, *created.backend, config, tokenizer ? &tokenizer->vocabulary() : nullptr,
                        std::move(proposer));
  engine::EngineClient client(engine);

  server::ServiceConfig service_config;
  service_config.model_name = name;
  service_config.max_model_len = engine_config.max_model_len;
  service_config.max_num_waiting = o.max_num_waiting;
  server::OpenAiService service(service_config, client, tokenizer.get(), chat_template.get());
  // Energy from NVML's counter when a GPU and its driver are there (nothing otherwise).
  auto nvml = std::make_shared<bench::NvmlSampler>(o.nvml_library);
  if (auto start_j = nvml->total_energy_j())
    service.metrics().energy_j = [nvml, start = *start_j]() -> std::optional<double> {
      auto now = nvml->total_energy_j();
      return now ? std::optional<double>(*now - start) : std::nullopt;
    };

  const int64_t open_files = raise_open_file_limit();
  server::HttpServer http(o.http, service);
  std::thread engine_thread([&client] {
    pthread_setname_np(pthread_self(), "iol-engine");
    client.run();
  });
  fmt::print(stderr, "iol serve: {} on {} as '{}'; KV pool {} blocks of {} tokens; max model len {}; open-file limit {}\n",
             loaded.description, created.description, name, engine_config.num_kv_blocks, engine_config.block_size,
             engine_config.max_model_len, open_files);
  fmt::print(stderr, "iol serve: listening on http://{}:{}\n", o.http.host, http.port());
  std::fflush(stderr);
  http.run();
  client.stop();
  engine_thread.join();
  fmt::print(stderr, "iol serve: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* command = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  command->footer(
      "Examples:\n"
      "  iol serve --model models/tiny --port 8000\n"
      "  iol serve --model models/llama3 --api-key secret --max-num-waiting 512 --shutdown-timeout 10\n"
      "  curl http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \\\n"
      "       -d '{\"prompt\": \"Hello\", \"max_tokens\": 16, \"temperature\": 0}'\n"
      "See docs/server.md for every endpoint.");
  options->model.add_to(*command);
  options->engine.add_to(*command);
  auto& h = options->http;
  command->add_option("--host", h.host, "Address to listen on")->capture_default_str();
  command->add_option("--port", options->port, "Port to listen on (0: any free port, printed on stderr)")
      ->check(int_range(0, 65535))
      ->capture_default_str();
  command->add_option("--served-model-name", options->served_model_name,
                      "Model name clients send and /v1/models lists (default: the model directory's name or the preset)");
  command->add_option("--api-key", h.api_key, "Require 'Authorization: Bearer KEY' on /v1/*, /tokenize, /detokenize "
                                               "(default: the IOL_API_KEY environment variable; none when unset)");
  command->add_option("--max-body-bytes", h.max_body_bytes, "Largest request body accepted (413 beyond)")
      ->check(int_range(1, int64_t{1} << 30))
      ->capture_default_str();
  command->add_option("--max-num-waiting", options->max_num_waiting,
                      "Waiting requests beyond which new ones get 429 with Retry-After (-1: unbounded)")
      ->check(int_range(-1, kMaxNumWaiting))
      ->capture_default_str();
  command->add_option("--shutdown-timeout", h.shutdown_timeout_s,
                      "SIGTERM: seconds in-flight requests may take to finish before they are aborted")
      ->check(real_range(0, 86400))
      ->capture_default_str();
  command->add_option("--keep-alive-timeout", h.keep_alive_timeout_s, "Seconds an idle connection stays open")
      ->check(real_range(0, 86400, /*min_exclusive=*/true))
      ->capture_default_str();
  command->add_option("--http-threads", h.threads, "I/O threads (connections are coroutines, not threads)")
      ->check(int_range(1, kMaxThreads))
      ->capture_default_str();
  command->add_option("--chat-template", options->chat_template_file, "Jinja chat template file instead of the model's");
  command->add_option("--chat-template-name", options->chat_template_name, "Which of the model's named chat templates to use");
  command->add_option("--nvml-library", options->nvml_library, "NVML library for the energy metric")->capture_default_str();
  command->callback([options, &runner] { runner = [options] { run_serve(*options); }; });
}

}  // namespace iol::cli
