// SIGINT/SIGTERM during a measurement: the handler only sets a flag that the runner checks between
// engine steps, so the point in progress is finished as an `interrupted` record (with what was
// measured) instead of being discarded. SA_RESETHAND: a second signal terminates at once.
#pragma once
#include <atomic>
#include <exception>

namespace iol::cli {

class InterruptGuard {
 public:
  InterruptGuard();   // installs the handlers
  ~InterruptGuard();  // restores the previous ones
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  // The signal number received, 0 while none.
  static const std::atomic<int>& received();
};

// Thrown after an interrupted run has been recorded; main exits 128 + signal, as a shell would.
class Interrupted : public std::exception {
 public:
  explicit Interrupted(int signal) : signal_(signal) {}
  int signal() const { return signal_; }
  const char* what() const noexcept override { return "interrupted"; }

 private:
  int signal_;
};

}  // namespace iol::cli
