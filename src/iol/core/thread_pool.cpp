#include "iol/core/thread_pool.hpp"

#include <algorithm>
#include <system_error>

#include "iol/core/error.hpp"

namespace iol {

namespace {
std::pair<size_t, size_t> chunk_of(size_t n, size_t parts, size_t index) {
  size_t base = n / parts, extra = n % parts;
  size_t begin = index * base + std::min(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}
}  // namespace

ThreadPool::ThreadPool(size_t num_threads) {
  if (num_threads == 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  if (num_threads > kMaxThreads) fail("thread pool: {} threads requested; at most {}", num_threads, kMaxThreads);
  // chunk_of() splits by num_threads() = workers_.size() + 1, so the workers must exist before
  // any runs; reserving first means emplace_back cannot throw after a thread was started.
  workers_.reserve(num_threads - 1);
  try {
    for (size_t i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  } catch (const std::system_error& e) {
    // Stop and join the threads already started (the destructor does not run for a throwing
    // constructor), then report: a failed thread creation used to leave the pool deadlocked.
    const size_t started = workers_.size();
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_ready_.notify_all();
    for (auto& worker : workers_) worker.join();
    fail("thread pool: could not start thread {} of {} ({}); use fewer --threads", started + 2, num_threads, e.what());
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t)>& body) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    body(0, n);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    body_ = &body;
    n_ = n;
    pending_ = workers_.size();
    ++generation_;
  }
  work_ready_.notify_all();
  auto [begin, end] = chunk_of(n, num_threads(), 0);
  if (begin < end) body(begin, end);
  std::unique_lock lock(mutex_);
  work_done_.wait(lock, [this] { return pending_ == 0; });
  body_ = nullptr;
}

void ThreadPool::worker_loop(size_t worker_index) {
  size_t seen_generation = 0;
  while (true) {
    const std::function<void(size_t, size_t)>* body;
    size_t n;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen_generation; });
      if (stopping_) return;
      seen_generation = generation_;
      body = body_;
      n = n_;
    }
    auto [begin, end] = chunk_of(n, num_threads(), worker_index);
    if (begin < end) (*body)(begin, end);
    {
      std::lock_guard lock(mutex_);
      if (--pending_ == 0) work_done_.notify_one();
    }
  }
}

}  // namespace iol
