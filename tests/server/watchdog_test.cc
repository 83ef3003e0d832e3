#include "server/watchdog.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace coset {
namespace {

using std::chrono::milliseconds;

TEST(WatchdogTest, PingsOnlyAfterAProbeThatServed) {
  std::atomic<bool> serving{true};
  std::atomic<int> probes{0}, pings{0};
  {
    Watchdog dog(
        std::chrono::microseconds(20000),  // probe every 10 ms
        [&](milliseconds deadline) {
          EXPECT_EQ(deadline, milliseconds(10));
          ++probes;
          return serving.load();
        },
        [&](const char* message) {
          EXPECT_EQ(std::string(message), "WATCHDOG=1");
          ++pings;
        });
    while (pings < 3) std::this_thread::sleep_for(milliseconds(1));
    // A wedged daemon: probes keep failing, so no further ping is sent.
    serving = false;
    const int probes_before = probes;
    std::this_thread::sleep_for(milliseconds(5));
    const int pings_when_wedged = pings;
    while (probes < probes_before + 5) std::this_thread::sleep_for(milliseconds(1));
    EXPECT_EQ(pings, pings_when_wedged);
  }  // the destructor stops the thread
  const int after = probes;
  std::this_thread::sleep_for(milliseconds(30));
  EXPECT_EQ(probes, after);
}

TEST(WatchdogTest, NotRequestedWithoutWatchdogUsec) {
  unsetenv("WATCHDOG_USEC");
  EXPECT_EQ(Watchdog::RequestedPeriod().count(), 0);
  setenv("WATCHDOG_USEC", "400000", 1);
  unsetenv("WATCHDOG_PID");
  EXPECT_EQ(Watchdog::RequestedPeriod().count(), 400000);
  unsetenv("WATCHDOG_USEC");
}

}  // namespace
}  // namespace coset
