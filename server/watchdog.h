// systemd's service watchdog (WatchdogSec= in the unit): cosetd sends WATCHDOG=1 only after a real
// RPC answered through its own listener, so a daemon whose serving threads are wedged (deadlock,
// every handler stuck) stops pinging and systemd restarts it. A bare timer thread would keep
// pinging from a wedged process.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace coset {

class Watchdog {
 public:
  // A probe answers whether the daemon served one request within `deadline`.
  using Probe = std::function<bool(std::chrono::milliseconds deadline)>;
  // Sends one sd_notify-style message ("WATCHDOG=1").
  using Notify = std::function<void(const char* message)>;

  // Probes every `period` / 2 (systemd's advice) and notifies after each probe that succeeded.
  Watchdog(std::chrono::microseconds period, Probe probe, Notify notify);
  ~Watchdog();  // stops the thread

  // The period systemd asked for (WATCHDOG_USEC for this process), or zero when it did not.
  static std::chrono::microseconds RequestedPeriod();

 private:
  void Run();

  const std::chrono::microseconds interval_;
  Probe probe_;
  Notify notify_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace coset
