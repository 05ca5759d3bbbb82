#include "iol/cli/interrupt.hpp"

#include <csignal>

namespace iol::cli {

namespace {
std::atomic<int> g_received{0};
struct sigaction g_previous_int {}, g_previous_term {};

extern "C" void on_signal(int signal) { g_received.store(signal); }
}  // namespace

InterruptGuard::InterruptGuard() {
  g_received.store(0);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &action, &g_previous_int);
  sigaction(SIGTERM, &action, &g_previous_term);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
}

const std::atomic<int>& InterruptGuard::received() { return g_received; }

}  // namespace iol::cli
