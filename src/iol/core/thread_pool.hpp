// A fixed pool of worker threads for data-parallel loops (the CPU reference backend).
// parallel_for splits [0, n) into one contiguous chunk per thread; the caller works too.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace iol {

class ThreadPool {
 public:
  static constexpr size_t kMaxThreads = 1024;
  // Throws iol::Error (after joining the threads already started) when a thread cannot be created.
  // num_threads == 0 picks std::thread::hardware_concurrency().
  explicit ThreadPool(size_t num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t num_threads() const { return workers_.size() + 1; }
  // Calls body(begin, end) on disjoint chunks covering [0, n); returns when all are done.
  void parallel_for(size_t n, const std::function<void(size_t, size_t)>& body);

 private:
  void worker_loop(size_t worker_index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  const std::function<void(size_t, size_t)>* body_ = nullptr;
  size_t n_ = 0;
  size_t generation_ = 0;
  size_t pending_ = 0;
  bool stopping_ = false;
};

}  // namespace iol
