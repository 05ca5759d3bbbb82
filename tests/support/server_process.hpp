// An `iol serve` child process for tests: started on a free port (--port 0, the port read from
// its stderr), stopped with SIGTERM at scope exit; requests through the bench's HTTP client.
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "iol/bench/http_load_client.hpp"
#include "iol/bench/prometheus_text.hpp"

namespace iol::testing {

class ServerProcess {
 public:
  // `args` after "serve"; `stderr_path` receives the server's stderr.
  ServerProcess(const std::string& args, const std::string& stderr_path) : stderr_path_(stderr_path) {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string command = "exec " + std::string(IOL_BINARY) + " serve --port 0 " + args + " 2>" + stderr_path;
      execl("/bin/sh", "sh", "-c", command.c_str(), nullptr);
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const std::regex listening("listening on http://[0-9.]+:([0-9]+)");
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      const std::string err = read_stderr();
      if (std::regex_search(err, m, listening)) {
        port_ = static_cast<uint16_t>(std::stoi(m[1]));
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("iol serve exited at start: " + err);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("iol serve did not start listening within 60 s: " + read_stderr());
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  bench::HttpTarget target() const { return {"127.0.0.1", port_, ""}; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string read_stderr() const {
    std::ifstream in(stderr_path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // SIGTERM, then the exit status (or -1 when it did not exit within `seconds`).
  int terminate(double seconds = 30) {
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  // Resident memory of the server in KiB (/proc/PID/status VmRSS).
  int64_t rss_kib() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    return -1;
  }

  bench::HttpCallResult post(const std::string& path, const std::string& body, const std::string& api_key = "") const {
    bench::HttpLoadClient client(target(), api_key, 120);
    bench::HttpCall call;
    call.path = path;
    call.body = body;
    return client.request(call);
  }
  bench::HttpCallResult get(const std::string& path) const {
    bench::HttpLoadClient client(target(), "", 30);
    bench::HttpCall call;
    call.method = "GET";
    call.path = path;
    return client.request(call);
  }
  double metric(const std::string& name) const {
    auto v = bench::prometheus_value(get("/metrics").body, name);
    return v ? *v : -1;
  }

 private:
  std::string stderr_path_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace iol::testing
