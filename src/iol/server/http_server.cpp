#include "iol/server/http_server.hpp"

#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without including it (Boost 1.74)

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "iol/core/error.hpp"
#include "iol/server/api_error.hpp"

namespace iol::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kAwait = asio::use_awaitable;
auto redirect(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// Compares in time independent of where the strings differ (no early exit on a mismatch).
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) diff |= static_cast<unsigned char>(a.empty() ? 1 : a[i % a.size()] ^ b[i]);
  return diff == 0;
}

std::string error_body(const ApiError& e) { return e.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// One connection: its socket, read buffer and the timer its coroutine sleeps on while a request
// runs. Shared by the session coroutine and the disconnect watcher (both on its strand).
struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)), wake(stream.get_executor()) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  asio::steady_timer wake;
  bool watching = false;
  bool disconnected = false;
  // A wake that came while the coroutine was not sleeping (e.g. during a write): the next sleep
  // returns at once. (OutputStream wakes only when its queue goes from empty to non-empty, so a
  // wake lost here would leave the stream asleep for good.)
  bool woken = false;
};

// On the connection's strand.
void wake_up(Connection& c) {
  c.woken = true;
  c.wake.cancel();
}

asio::awaitable<void> sleep_until_woken(Connection& c) {
  if (!c.woken) {
    c.wake.expires_at(asio::steady_timer::time_point::max());
    error_code ec;
    co_await c.wake.async_wait(redirect(ec));
  }
  c.woken = false;
}

// Reads while a request runs: the client sends nothing then, so end of stream or an error means
// it went away. Bytes that do arrive (a pipelined request) stay in the buffer for the next read.
asio::awaitable<void> watch_disconnect(std::shared_ptr<Connection> c) {
  error_code ec;
  const size_t n = co_await c->stream.socket().async_read_some(c->buffer.prepare(4096), redirect(ec));
  if (!ec) c->buffer.commit(n);
  else if (ec != asio::error::operation_aborted) c->disconnected = true;
  c->watching = false;
  wake_up(*c);
}

}  // namespace

struct HttpServer::Impl {
  Impl(HttpServerConfig cfg, OpenAiService& svc)
      : config(std::move(cfg)), service(svc), acceptor(io), signals(io, SIGTERM, SIGINT) {
    error_code ec;
    auto address = asio::ip::make_address(config.host, ec);
    if (ec) fail("--host {}: not an IP address ({})", config.host, ec.message());
    tcp::endpoint endpoint(address, config.port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) fail("cannot listen on {}:{}: {}", config.host, config.port, ec.message());
  }

  HttpServerConfig config;
  OpenAiService& service;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  std::atomic<int64_t> active_generations{0};
  std::atomic<bool> draining{false};

  asio::awaitable<void> accept_loop() {
    for (;;) {
      error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::make_strand(io), redirect(ec));
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;  // e.g. out of descriptors: keep serving the connections we have
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto executor = socket.get_executor();
      asio::co_spawn(executor, session(std::make_shared<Connection>(std::move(socket))), asio::detached);
    }
  }

  asio::awaitable<bool> write_simple(Connection& c, unsigned version, bool keep_alive, int status,
                                     const std::string& content_type, std::string body, int retry_after = 0) {
    http::response<http::string_body> res{static_cast<http::status>(status), version};
    res.set(http::field::server, "iol");
    res.set(http::field::content_type, content_type);
    if (retry_after > 0) res.set(http::field::retry_after, std::to_string(retry_after));
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    service.metrics().on_http_response(status);
    error_code ec;
    co_await http::async_write(c.stream, res, redirect(ec));
    co_return !ec;
  }

  asio::awaitable<bool> write_error(Connection& c, unsigned version, bool keep_alive, const ApiError& e) {
    co_return co_await write_simple(c, version, keep_alive, e.status(), "application/json", error_body(e),
                                    e.status() == 429 ? service.config().retry_after_s : 0);
  }

  bool authorized(const http::request<http::string_body>& req) const {
    if (config.api_key.empty()) return true;
    auto it = req.find(http::field::authorization);
    if (it == req.end()) return false;
    std::string_view value(it->value().data(), it->value().size());
    if (value.substr(0, 7) != "Bearer ") return false;
    return constant_time_equal(value.substr(7), config.api_key);
  }

  // One generation: start it, stream or collect its output, abort it if the client leaves.
  asio::awaitable<bool> generate(std::shared_ptr<Connection> c, Endpoint endpoint, const http::request<http::string_body>& req,
                                 bool keep_alive) {
    std::weak_ptr<Connection> weak = c;
    auto executor = c->stream.get_executor();
    engine::OutputStream::Waker waker = [weak, executor] {
      asio::post(executor, [weak] {
        if (auto conn = weak.lock()) wake_up(*conn);
      });
    };
    std::unique_ptr<GenerationJob> job;
    std::optional<ApiError> rejected;
    try {
      job = service.start_generation(endpoint, req.body(), std::move(waker));
    } catch (const ApiError& e) {
      rejected = e;
    } catch (const std::exception& e) {
      rejected = ApiError(400, e.what());  // e.g. a tokenizer error on this input
    }
    if (rejected) co_return co_await write_error(*c, req.version(), keep_alive, *rejected);
    ++active_generations;
    c->watching = true;
    c->disconnected = false;
    asio::co_spawn(executor, watch_disconnect(c), asio::detached);
    bool ok = true;
    error_code ec;
    if (job->streaming()) {
      http::response<http::empty_body> res{http::status::ok, req.version()};
      res.set(http::field::server, "iol");
      res.set(http::field::content_type, "text/event-stream");
      res.set(http::field::cache_control, "no-cache");
      res.keep_alive(keep_alive);
      res.chunked(true);
      http::response_serializer<http::empty_body> serializer{res};
      service.metrics().on_http_response(200);
      co_await http::async_write_header(c->stream, serializer, redirect(ec));
      ok = !ec;
    }
    while (ok) {
      std::string data = job->poll();
      if (job->streaming() && !data.empty()) {
        co_await asio::async_write(c->stream, http::make_chunk(asio::buffer(data)), redirect(ec));
        if (ec) ok = false;
      }
      if (job->done() || c->disconnected) break;
      if (ok) co_await sleep_until_woken(*c);
    }
    // A client that left frees its KV blocks at the next step; so do the other requests of a job
    // one of whose requests failed (its response is the error).
    if (!ok || c->disconnected || job->error()) job->abort(service.client());
    if (!ok || c->disconnected) {
      ok = false;
    } else if (job->streaming()) {
      co_await asio::async_write(c->stream, http::make_chunk_last(), redirect(ec));
      ok = !ec;
    } else {
      const int status = job->error() ? job->error()->status() : 200;
      ok = co_await write_simple(*c, req.version(), keep_alive, status, "application/json",
                                 job->response().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    // Stop the watcher before the next read of this connection.
    if (c->watching) c->stream.socket().cancel(ec);
    while (c->watching) co_await sleep_until_woken(*c);
    --active_generations;
    co_return ok;
  }

  asio::awaitable<void> session(std::shared_ptr<Connection> c) {
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(static_cast<uint64_t>(config.max_body_bytes));
      parser.header_limit(64 * 1024);
      c->stream.expires_after(std::chrono::milliseconds(static_cast<int64_t>(config.keep_alive_timeout_s * 1000)));
      error_code ec;
      co_await http::async_read(c->stream, c->buffer, parser, redirect(ec));
      if (ec == http::error::body_limit) {
        co_await write_error(*c, 11, false, ApiError(413, fmt::format("the request body exceeds the limit of {} bytes "
                                                                    "(--max-body-bytes)", config.max_body_bytes)));
        break;
      }
      if (ec == http::error::header_limit) {
        co_await write_error(*c, 11, false, ApiError(431, "the request headers exceed 64 KiB"));
        break;
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
          ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
        break;
      if (ec) {
        co_await write_error(*c, 11, false, ApiError(400, fmt::format("malformed HTTP request: {}", ec.message())));
        break;
      }
      c->stream.expires_never();
      const http::request<http::string_body>& req = parser.get();
      const bool keep_alive = req.keep_alive() && !draining;
      std::string_view target(req.target().data(), req.target().size());
      const std::string path(target.substr(0, target.find('?')));
      const std::string method(req.method_string());
      bool ok = true;
      const bool protected_path = path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize";
      if (protected_path && !authorized(req)) {
        ok = co_await write_error(*c, req.version(), keep_alive,
                                  ApiError(401, "missing or wrong API key (send the header 'Authorization: Bearer KEY')",
                                           "", "invalid_request_error", "invalid_api_key"));
      } else if (path == "/v1/completions" || path == "/v1/chat/completions") {
        if (req.method() != http::verb::post)
          ok = co_await write_error(*c, req.version(), keep_alive, ApiError(405, fmt::format("{} needs POST", path)));
        else
          ok = co_await generate(c, path == "/v1/completions" ? Endpoint::Completions : Endpoint::ChatCompletions, req, keep_alive);
      } else {
        SimpleResponse response;
        std::optional<ApiError> error;
        try {
          response = service.handle_simple(method, path, req.body());
        } catch (const ApiError& e) {
          error = e;
        } catch (const std::exception& e) {
          error = ApiError(400, e.what());
        }
        ok = error ? co_await write_error(*c, req.version(), keep_alive, *error)
                   : co_await write_simple(*c, req.version(), keep_alive, response.status, response.content_type,
                                           std::move(response.body));
      }
      if (!ok || !keep_alive) break;
    }
    error_code ignored;
    c->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    c->stream.close();
  }

  // SIGTERM: stop accepting, let in-flight generations finish within the timeout, abort the rest.
  asio::awaitable<void> drain() {
    draining = true;
    service.set_draining();
    error_code ec;
    acceptor.close(ec);
    asio::steady_timer timer(io);
    auto wait_for_generations = [&](double seconds) -> asio::awaitable<void> {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
      while (active_generations.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(redirect(ec));
      }
    };
    co_await wait_for_generations(config.shutdown_timeout_s);
    if (active_generations.load() > 0) {
      fmt::print(stderr, "iol serve: shutdown timeout: aborting {} in-flight requests\n", active_generations.load());
      service.client().abort_all();
      // Aborts land at the engine's next step; the bound only matters on a starved machine.
      co_await wait_for_generations(30.0);
    }
    io.stop();
  }
};

HttpServer::HttpServer(HttpServerConfig config, OpenAiService& service)
    : impl_(std::make_unique<Impl>(std::move(config), service)) {}
HttpServer::~HttpServer() = default;

uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::request_stop() {
  asio::post(impl_->io, [impl = impl_.get()] {
    if (!impl->draining) asio::co_spawn(impl->io, impl->drain(), asio::detached);
  });
}

void HttpServer::run() {
  Impl& impl = *impl_;
  impl.signals.async_wait([&impl](const error_code& ec, int) {
    if (!ec && !impl.draining) asio::co_spawn(impl.io, impl.drain(), asio::detached);
  });
  asio::co_spawn(impl.io, impl.accept_loop(), asio::detached);
  std::vector<std::thread> threads;
  // Named, so per-thread CPU time (top -H, /proc/PID/task/*/comm) separates HTTP from the engine.
  for (int i = 1; i < std::max(1, impl.config.threads); ++i)
    threads.emplace_back([&impl] {
      pthread_setname_np(pthread_self(), "iol-http");
      impl.io.run();
    });
  pthread_setname_np(pthread_self(), "iol-http");
  impl.io.run();
  for (auto& t : threads) t.join();
}

}  // namespace iol::server
