// The scheduler's admission rules, without instances: concurrency slots
// (host-wide and reserved) and the memory budget.
#include <gtest/gtest.h>

#include "invoker/functions/failure.hpp"
#include "invoker/invocation/scheduler.hpp"

using namespace thaw::invoker;

namespace {

SchedulerLimits limits(unsigned concurrency, uint64_t memory_mb = 0) {
  SchedulerLimits l;
  l.max_concurrency = concurrency;
  l.memory_budget_mb = memory_mb;
  return l;
}

// The throttle reason of acquiring a slot, or "" when admitted.
std::string refusal(Scheduler& s, const std::string& function, uint32_t memory_mb = 128) {
  try {
    auto lease = s.acquire(function, "digest", memory_mb);
    return "";
  } catch (const Failure& e) {
    EXPECT_EQ(e.kind, FailureKind::Throttled);
    return e.reason;
  }
}

}  // namespace

TEST(Scheduler, TheHostLimitCountsInvocationsInFlight) {
  Scheduler s(limits(2));
  auto a = s.acquire("f", "digest", 128);
  auto b = s.acquire("g", "digest", 128);
  EXPECT_EQ(s.in_flight(), 2u);
  EXPECT_EQ(refusal(s, "h"), kConcurrentLimitExceeded);
  { auto moved = std::move(a); }  // a slot is given back when its lease ends
  EXPECT_EQ(s.in_flight(), 1u);
  EXPECT_EQ(refusal(s, "h"), "");
}

TEST(Scheduler, ReservedConcurrencyCapsTheFunctionAndIsTakenFromTheSharedPool) {
  Scheduler s(limits(3));
  s.set_reserved("r", 1);
  auto r1 = s.acquire("r", "digest", 128);
  EXPECT_EQ(refusal(s, "r"), kReservedLimitExceeded);
  // Two left for everyone else, whether or not "r" uses its slot.
  auto u1 = s.acquire("u", "digest", 128);
  auto u2 = s.acquire("v", "digest", 128);
  EXPECT_EQ(refusal(s, "w"), kConcurrentLimitExceeded);
  EXPECT_EQ(s.reserved("r"), 1u);
  EXPECT_EQ(s.reserved("u"), std::nullopt);
}

TEST(Scheduler, ReservedConcurrencyOfZeroThrottlesEverything) {
  Scheduler s(limits(10));
  s.set_reserved("off", 0);
  EXPECT_EQ(refusal(s, "off"), kReservedLimitExceeded);
  s.set_reserved("off", std::nullopt);
  EXPECT_EQ(refusal(s, "off"), "");
}

TEST(Scheduler, ReservationsCannotExceedTheHostLimit) {
  Scheduler s(limits(4));
  s.set_reserved("a", 3);
  EXPECT_THROW(s.set_reserved("b", 2), Failure);
  s.set_reserved("a", 2);  // changing one's own reservation counts it once
  s.set_reserved("b", 2);
  EXPECT_EQ(refusal(s, "c"), kConcurrentLimitExceeded);
}

TEST(Scheduler, ASlotTakenBeforeAReservationChangeIsGivenBackToItsPool) {
  Scheduler s(limits(2));
  {
    auto lease = s.acquire("f", "digest", 128);  // from the shared pool
    s.set_reserved("f", 1);
  }
  EXPECT_EQ(s.in_flight(), 0u);
  auto other = s.acquire("g", "digest", 128);
  EXPECT_EQ(refusal(s, "h"), kConcurrentLimitExceeded);  // 2 - 1 reserved = 1 shared slot
}

TEST(Scheduler, TheMemoryBudgetRefusesANewInstanceThatDoesNotFit) {
  Scheduler s(limits(10, 256));
  auto a = s.acquire("a", "digest", 128);
  EXPECT_EQ(s.memory_in_use_mb(), 128u);
  EXPECT_EQ(refusal(s, "big", 256), kMemoryBudgetExceeded);
  EXPECT_EQ(s.in_flight(), 1u);  // a refused request holds nothing
  EXPECT_EQ(refusal(s, "b", 128), "");
  EXPECT_EQ(s.memory_in_use_mb(), 128u);  // given back with its lease
}
