// HttpLoadClient: one asynchronous HTTP/1.1 client (Boost.Beast over Asio, one I/O thread, a
// coroutine per call) that holds thousands of concurrent requests — closed loop with N workers
// on keep-alive connections, or each call at its own start time (open loop). Server-Sent Events
// are split as they arrive and each event is timestamped, which is what TTFT and ITL are
// measured from. A call can hang up after k events (a client that goes away, for tests).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace iol::bench {

struct HttpTarget {
  std::string host;
  uint16_t port = 80;
  std::string base_path;  // prefix of every path ("" or e.g. "/openai")
  // http://HOST[:PORT][/BASE]; throws UsageError for anything else (https is not supported).
  static HttpTarget parse(const std::string& url);
  std::string url() const;
};

struct HttpCall {
  std::string method = "POST";
  std::string path;          // appended to the target's base path
  std::string body;          // JSON
  double start_at = 0;       // open loop: seconds after the run starts
  int64_t hang_up_after_events = -1;  // >= 0: close the connection after this many SSE events
};

struct HttpCallResult {
  int status = 0;                   // 0: no response (connection error, or hung up)
  double sent = -1;                 // seconds after the run started
  double finished = -1;
  std::vector<std::string> events;  // SSE payloads (streaming responses)
  std::vector<double> event_times;
  std::string body;                 // the whole body of a non-streaming response
  std::string retry_after;          // the Retry-After header, when the server sent one
  std::string error;                // transport error
  bool hung_up = false;
};

class HttpLoadClient {
 public:
  HttpLoadClient(HttpTarget target, std::string api_key, double timeout_s = 600);

  // Runs every call: with concurrency > 0, that many workers each take the next call when its
  // last one is done (start_at ignored); with concurrency 0, each call starts at start_at.
  // `on_done(index, result)` runs on the client's thread as calls finish.
  std::vector<HttpCallResult> run(const std::vector<HttpCall>& calls, int64_t concurrency,
                                  const std::function<void(size_t, const HttpCallResult&)>& on_done = {});
  // One blocking call (e.g. GET /metrics).
  HttpCallResult request(const HttpCall& call);

 private:
  HttpTarget target_;
  std::string api_key_;
  double timeout_s_;
};

}  // namespace iol::bench
