// HttpServer: the transport of `iol serve` — Boost.Beast over Asio, one coroutine per
// connection on a few I/O threads (no thread per connection), keep-alive, chunked SSE for
// streams. It checks the API key and the body limit, routes to OpenAiService, wakes a waiting
// connection when the engine pushes its events, watches each connection while its request runs
// (a client that goes away aborts the request) and drains on SIGTERM/SIGINT.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "iol/server/openai_service.hpp"

namespace iol::server {

struct HttpServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;             // 0: any free port (see HttpServer::port())
  std::string api_key;              // empty: no authentication
  int64_t max_body_bytes = 4 << 20;
  int threads = 2;                  // I/O threads
  double shutdown_timeout_s = 30;   // SIGTERM: in-flight requests may finish this long, then are aborted
  double keep_alive_timeout_s = 60; // an idle connection is closed after this
};

class HttpServer {
 public:
  // Binds at once (throws iol::Error naming the address when it cannot).
  HttpServer(HttpServerConfig config, OpenAiService& service);
  ~HttpServer();
  uint16_t port() const;
  // Serves until SIGTERM/SIGINT or request_stop(), then drains: stops accepting, lets in-flight
  // generations finish within shutdown_timeout_s, aborts the rest and returns.
  void run();
  void request_stop();  // any thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace iol::server
