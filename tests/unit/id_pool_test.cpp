// The pool of host ids functions get: its bounds, the order ranges are
// handed out in, and the check against the host's users and subordinate ids.
#include "invoker/functions/id_pool.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "temp_dir.hpp"
#include "thaw/error.hpp"

using thaw::Error;
using namespace thaw::invoker;

namespace {

constexpr uint32_t kRange = 65536;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// An /etc with the four files, empty unless given.
struct FakeEtc {
  thaw::test::TempDir dir;
  explicit FakeEtc(const std::string& subuid = "", const std::string& passwd = "") {
    std::ofstream(dir.path() + "/passwd") << passwd;
    std::ofstream(dir.path() + "/group") << "";
    std::ofstream(dir.path() + "/subuid") << subuid;
    std::ofstream(dir.path() + "/subgid") << "";
  }
};

}  // namespace

TEST(IdPool, BoundsAreChecked) {
  EXPECT_EQ(error_of([] { validate(IdPoolConfig{}); }), "");
  EXPECT_NE(error_of([] { validate({1u << 20, 0}); }).find("at least 1"), std::string::npos);
  EXPECT_NE(error_of([] { validate({1000, 4}); }).find("at least 65536"), std::string::npos);
  // The last range may end at 0xfffffffe, never at 0xffffffff ((uid_t)-1).
  const uint32_t last_fit = 0xffffffffu - kRange;
  EXPECT_EQ(error_of([=] { validate({last_fit, 1}); }), "");
  EXPECT_NE(error_of([=] {
              validate({last_fit + 1, 1});
            }).find("past the last host id"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              validate({1u << 20, 65535});
            }).find("past the last host id"),
            std::string::npos);
}

TEST(IdPool, RangesGoRoundAndSkipThoseInUse) {
  const IdPoolConfig pool{1u << 20, 3};
  const uint32_t a = 1u << 20, b = a + kRange, c = b + kRange;
  auto p = pick_range(pool, 0, {});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->base, a);
  EXPECT_EQ(p->index, 0u);
  // From the cursor on, wrapping round, past the ones in use.
  p = pick_range(pool, 2, {c});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->base, a);
  p = pick_range(pool, 7, {a});  // a cursor past the end wraps
  ASSERT_TRUE(p);
  EXPECT_EQ(p->base, b);
  EXPECT_FALSE(pick_range(pool, 1, {a, b, c}));
  EXPECT_TRUE(is_range_base(pool, b));
  EXPECT_FALSE(is_range_base(pool, b + 1));
  EXPECT_FALSE(is_range_base(pool, c + kRange));
  EXPECT_FALSE(is_range_base(pool, 100000));
}

TEST(IdPool, APoolOverlappingTheHostsIdsIsRefused) {
  const IdPoolConfig pool{1u << 20, 2};
  EXPECT_EQ(error_of([&] {
              FakeEtc etc("alice:100000:65536\n", "root:x:0:0::/root:/bin/sh\n");
              check_pool_is_unused(pool, etc.dir.path());
            }),
            "");
  const auto subuid = error_of([&] {
    FakeEtc etc("alice:100000:65536\nbob:1100000:65536\n");
    check_pool_is_unused(pool, etc.dir.path());
  });
  EXPECT_NE(subuid.find("range 1100000-1165535 of bob"), std::string::npos) << subuid;
  const auto passwd = error_of([&] {
    FakeEtc etc("", "svc:x:1048577:1048577::/:/bin/false\n");
    check_pool_is_unused(pool, etc.dir.path());
  });
  EXPECT_NE(passwd.find("id 1048577 of svc"), std::string::npos) << passwd;
  // Lines that are not entries are skipped, not misread.
  EXPECT_EQ(error_of([&] {
              FakeEtc etc("# comment\nbroken line\nx:notanumber:5\n");
              check_pool_is_unused(pool, etc.dir.path());
            }),
            "");
}
