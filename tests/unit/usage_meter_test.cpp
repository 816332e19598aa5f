// Usage totals are read while the meter writes them to the registry.
#include "invoker/invocation/usage_meter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "invoker/functions/registry.hpp"
#include "temp_dir.hpp"

using namespace thaw::invoker;

TEST(UsageMeter, TotalsNeverMissABatchOnItsWayToTheRegistry) {
  thaw::test::TempDir dir;
  Registry registry(dir.path() + "/thaw.db");
  UsageMeter meter(registry);
  // Stopped and joined also when an assertion below ends the test early.
  struct Flusher {
    explicit Flusher(UsageMeter& m)
        : meter(m), thread([this] {
            while (!stop) meter.flush();
          }) {}
    ~Flusher() {
      stop = true;
      thread.join();
    }
    UsageMeter& meter;
    std::atomic<bool> stop{false};
    std::thread thread;  // last: it uses the members above
  };
  auto flusher = std::make_unique<Flusher>(meter);
  for (uint64_t i = 1; i <= 200; ++i) {
    meter.invoked("f", 1.5, 2, 1024, false);
    const auto totals = meter.totals();
    const auto it = totals.find("f");
    ASSERT_NE(it, totals.end()) << "after " << i << " invocations";
    ASSERT_EQ(it->second.invocations, i);
    ASSERT_EQ(it->second.billed_ms, 2 * i);
  }
  flusher.reset();
  meter.flush();
  EXPECT_EQ(registry.usage().at("f").invocations, 200u);
}
