#include "iol/bench/http_load_client.hpp"

#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without including it (Boost 1.74)

#include <chrono>
#include <memory>
#include <optional>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "iol/bench/sse_parser.hpp"
#include "iol/core/error.hpp"
#include "iol/core/open_files.hpp"

namespace iol::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

HttpTarget HttpTarget::parse(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    throw UsageError(fmt::format("--target must be an http:// URL, e.g. http://127.0.0.1:8000 (got '{}')", url));
  std::string rest = url.substr(scheme.size());
  HttpTarget t;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    t.base_path = rest.substr(slash);
    rest = rest.substr(0, slash);
    while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
    // A URL ending in /v1 names the API root; paths already carry it.
    if (t.base_path.size() >= 3 && t.base_path.substr(t.base_path.size() - 3) == "/v1") t.base_path.resize(t.base_path.size() - 3);
  }
  const size_t colon = rest.rfind(':');
  t.host = rest.substr(0, colon);
  if (colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p <= 0 || p > 65535)
      throw UsageError(fmt::format("--target: '{}' is not a port (in '{}')", port, url));
    t.port = static_cast<uint16_t>(p);
  }
  if (t.host.empty()) throw UsageError(fmt::format("--target: no host in '{}'", url));
  return t;
}

std::string HttpTarget::url() const { return fmt::format("http://{}:{}{}", host, port, base_path); }

namespace {

auto redirect(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

struct RunState {
  asio::io_context io;
  HttpTarget target;
  std::string api_key;
  double timeout_s;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::vector<tcp::endpoint> endpoints;
  double now() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

// One call on `stream` (connected, or connected here when closed); leaves it open for reuse
// when the server keeps the connection alive.
asio::awaitable<void> one_call(RunState& s, std::optional<beast::tcp_stream>& stream, const HttpCall& call, HttpCallResult& r) {
  error_code ec;
  if (!stream) {
    stream.emplace(s.io.get_executor());
    stream->expires_after(std::chrono::seconds(30));
    co_await stream->async_connect(s.endpoints, redirect(ec));
    if (ec) {
      r.error = "connect: " + ec.message();
      r.finished = s.now();
      stream.reset();
      co_return;
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
  }
  http::request<http::string_body> req{call.method == "GET" ? http::verb::get : http::verb::post,
                                       s.target.base_path + call.path, 11};
  req.set(http::field::host, fmt::format("{}:{}", s.target.host, s.target.port));
  req.set(http::field::user_agent, "iol-bench");
  if (!s.api_key.empty()) req.set(http::field::authorization, "Bearer " + s.api_key);
  if (call.method != "GET") {
    req.set(http::field::content_type, "application/json");
    req.body() = call.body;
  }
  req.keep_alive(true);
  req.prepare_payload();
  stream->expires_after(std::chrono::milliseconds(static_cast<int64_t>(s.timeout_s * 1000)));
  r.sent = s.now();
  co_await http::async_write(*stream, req, redirect(ec));
  if (ec) {
    r.error = "write: " + ec.message();
    r.finished = s.now();
    stream.reset();
    co_return;
  }
  auto hang_up = [&] {
    r.hung_up = true;
    r.finished = s.now();
    error_code ignored;
    stream->socket().close(ignored);
    stream.reset();
  };
  if (call.hang_up_after_events == 0) {
    hang_up();
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ull << 32);
  SseParser sse;
  size_t consumed = 0;
  bool is_sse = false;
  while (!parser.is_done()) {
    co_await http::async_read_some(*stream, buffer, parser, redirect(ec));
    if (ec) break;
    if (!parser.is_header_done()) continue;
    auto type = parser.get()[http::field::content_type];
    is_sse = std::string_view(type.data(), type.size()).find("text/event-stream") != std::string_view::npos;
    if (!is_sse) continue;
    const std::string& body = parser.get().body();
    const double t = s.now();
    for (auto& event : sse.feed(std::string_view(body).substr(consumed))) {
      r.events.push_back(std::move(event));
      r.event_times.push_back(t);
    }
    consumed = body.size();
    if (call.hang_up_after_events > 0 && static_cast<int64_t>(r.events.size()) >= call.hang_up_after_events) {
      hang_up();
      co_return;
    }
  }
  r.finished = s.now();
  if (ec) {
    r.error = "read: " + ec.message();
    stream.reset();
    co_return;
  }
  r.status = static_cast<int>(parser.get().result_int());
  if (auto it = parser.get().find(http::field::retry_after); it != parser.get().end()) r.retry_after = std::string(it->value());
  if (!is_sse) r.body = parser.get().body();
  if (!parser.get().keep_alive()) stream.reset();
}

asio::awaitable<void> worker(RunState& s, const std::vector<HttpCall>& calls, size_t& next, std::vector<HttpCallResult>& results,
                             const std::function<void(size_t, const HttpCallResult&)>& on_done) {
  std::optional<beast::tcp_stream> stream;
  while (next < calls.size()) {
    const size_t i = next++;
    co_await one_call(s, stream, calls[i], results[i]);
    if (on_done) on_done(i, results[i]);
  }
}

asio::awaitable<void> timed_call(RunState& s, const HttpCall& call, size_t i, std::vector<HttpCallResult>& results,
                                 const std::function<void(size_t, const HttpCallResult&)>& on_done) {
  asio::steady_timer timer(s.io);
  timer.expires_at(s.start + std::chrono::microseconds(static_cast<int64_t>(call.start_at * 1e6)));
  error_code ec;
  co_await timer.async_wait(redirect(ec));
  std::optional<beast::tcp_stream> stream;
  co_await one_call(s, stream, call, results[i]);
  if (on_done) on_done(i, results[i]);
}

std::vector<tcp::endpoint> resolve(asio::io_context& io, const HttpTarget& target) {
  tcp::resolver resolver(io);
  error_code ec;
  auto found = resolver.resolve(target.host, std::to_string(target.port), ec);
  if (ec) fail("{}: cannot resolve {}: {}", target.url(), target.host, ec.message());
  std::vector<tcp::endpoint> endpoints;
  for (const auto& e : found) endpoints.push_back(e.endpoint());
  return endpoints;
}

}  // namespace

HttpLoadClient::HttpLoadClient(HttpTarget target, std::string api_key, double timeout_s)
    : target_(std::move(target)), api_key_(std::move(api_key)), timeout_s_(timeout_s) {
  raise_open_file_limit();
}

std::vector<HttpCallResult> HttpLoadClient::run(const std::vector<HttpCall>& calls, int64_t concurrency,
                                                const std::function<void(size_t, const HttpCallResult&)>& on_done) {
  RunState s;
  s.target = target_;
  s.api_key = api_key_;
  s.timeout_s = timeout_s_;
  s.endpoints = resolve(s.io, target_);
  std::vector<HttpCallResult> results(calls.size());
  size_t next = 0;
  s.start = std::chrono::steady_clock::now();
  if (concurrency > 0) {
    const size_t workers = std::min(calls.size(), static_cast<size_t>(concurrency));
    for (size_t w = 0; w < workers; ++w) asio::co_spawn(s.io, worker(s, calls, next, results, on_done), asio::detached);
  } else {
    for (size_t i = 0; i < calls.size(); ++i) asio::co_spawn(s.io, timed_call(s, calls[i], i, results, on_done), asio::detached);
  }
  s.io.run();
  return results;
}

HttpCallResult HttpLoadClient::request(const HttpCall& call) { return run({call}, 1).at(0); }

}  // namespace iol::bench
