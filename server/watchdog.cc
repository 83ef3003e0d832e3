#include "server/watchdog.h"

#include <systemd/sd-daemon.h>

#include <algorithm>

namespace coset {

Watchdog::Watchdog(std::chrono::microseconds period, Probe probe, Notify notify)
    : interval_(std::max(period / 2, std::chrono::microseconds(1000))),
      probe_(std::move(probe)),
      notify_(std::move(notify)),
      thread_([this] { Run(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

std::chrono::microseconds Watchdog::RequestedPeriod() {
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) names this process.
  if (sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec);
}

void Watchdog::Run() {
  const auto deadline = std::chrono::duration_cast<std::chrono::milliseconds>(interval_);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const auto next = std::chrono::steady_clock::now() + interval_;
    lock.unlock();
    const bool served = probe_(std::max(deadline, std::chrono::milliseconds(1)));
    if (served) notify_("WATCHDOG=1");
    lock.lock();
    stop_cv_.wait_until(lock, next, [this] { return stopping_; });
  }
}

}  // namespace coset
