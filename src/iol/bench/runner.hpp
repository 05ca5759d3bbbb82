// Runners drive a target with a workload and return one RequestTrace per request. The
// in-process runner drives an Engine; an HTTP runner (OpenAI-compatible servers) comes with the
// server and implements the same interface.
#pragma once
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "iol/bench/metrics.hpp"
#include "iol/bench/workload.hpp"
#include "iol/engine/engine.hpp"

namespace iol::bench {

// Called with (requests done, requests total, output tokens so far) as the run progresses.
using ProgressCallback = std::function<void(int64_t, int64_t, int64_t)>;

class Runner {
 public:
  virtual ~Runner() = default;
  virtual std::string name() const = 0;
  // Sends `requests` with the arrival setting of `point`; warm-up requests go first, alone.
  virtual std::vector<RequestTrace> run(const std::vector<BenchRequest>& requests, const SweepPoint& point,
                                        const WorkloadSpec& spec, const ProgressCallback& progress) = 0;
  // Target-side statistics of the last run (KV usage, preemptions, prefix cache), as JSON.
  virtual nlohmann::json target_stats() const = 0;

  // A flag (a signal number, 0 = none) checked between steps: once set, no request is sent and
  // those in flight are aborted; run() returns the traces of the requests sent so far.
  void set_stop_flag(const std::atomic<int>* flag) { stop_ = flag; }
  bool stop_requested() const { return stop_ && stop_->load() != 0; }

 private:
  const std::atomic<int>* stop_ = nullptr;
};

class InProcessRunner final : public Runner {
 public:
  explicit InProcessRunner(engine::Engine& engine) : engine_(engine) {}
  std::string name() const override { return "iol-inprocess"; }
  std::vector<RequestTrace> run(const std::vector<BenchRequest>& requests, const SweepPoint& point,
                                const WorkloadSpec& spec, const ProgressCallback& progress) override;
  nlohmann::json target_stats() const override;

 private:
  engine::Engine& engine_;
  engine::EngineStats before_{}, after_{};
};

}  // namespace iol::bench
