// The ChildPlan codec that carries a plan to thaw-sandbox-shim: every field
// survives the trip, and damaged input is refused rather than half-read.
#include "plan_codec.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace thaw::sandbox;
using namespace thaw::sandbox::detail;

namespace {

struct Sample {
  std::vector<sock_filter> filter{{0x06, 0, 0, 0x7fff0000}, {0x15, 1, 2, 59}};
  char a0[16] = "/usr/bin/python", a1[8] = "-u", e0[16] = "LANG=C.UTF-8";
  char* argv[3] = {a0, a1, nullptr};
  char* envp[2] = {e0, nullptr};
  ChildPlan plan;
  Sample() {
    plan.report_fd = 7;
    plan.user_ns_fd = 8;
    plan.net_ns_fd = 9;
    plan.root_dir = "/var/lib/thaw/root";
    plan.mounts = {{MountKind::Bind, "/usr", "usr"}, {MountKind::Proc, nullptr, "proc"}};
    plan.hostname = "thaw";
    plan.cwd = "/var/task";
    plan.uid = 1000;
    plan.gid = 1001;
    plan.cap_last = 40;
    plan.rlimits = {{RLIMIT_NOFILE, 1024}, {RLIMIT_FSIZE, 512ull << 20}};
    plan.seccomp = {static_cast<unsigned short>(filter.size()), filter.data()};
    plan.fds = {-1, 11, 11, 12, 13};
    plan.fd_scratch_base = 14;
    plan.argv = argv;
    plan.envp = envp;
  }
};

}  // namespace

TEST(PlanCodec, EveryFieldSurvivesTheTrip) {
  Sample s;
  DecodedPlan d;
  ASSERT_TRUE(decode_plan(encode_plan(s.plan), d));
  const auto& p = d.plan;
  EXPECT_EQ(p.report_fd, 7);
  EXPECT_EQ(p.user_ns_fd, 8);
  EXPECT_EQ(p.net_ns_fd, 9);
  EXPECT_STREQ(p.root_dir, "/var/lib/thaw/root");
  ASSERT_EQ(p.mounts.size(), 2u);
  EXPECT_EQ(p.mounts[0].kind, MountKind::Bind);
  EXPECT_STREQ(p.mounts[0].source, "/usr");
  EXPECT_STREQ(p.mounts[0].target, "usr");
  EXPECT_EQ(p.mounts[1].kind, MountKind::Proc);
  EXPECT_EQ(p.mounts[1].source, nullptr);
  EXPECT_STREQ(p.hostname, "thaw");
  EXPECT_STREQ(p.cwd, "/var/task");
  EXPECT_EQ(p.uid, 1000u);
  EXPECT_EQ(p.gid, 1001u);
  EXPECT_EQ(p.cap_last, 40);
  ASSERT_EQ(p.rlimits.size(), 2u);
  EXPECT_EQ(p.rlimits[1].resource, RLIMIT_FSIZE);
  EXPECT_EQ(p.rlimits[1].value, 512ull << 20);
  ASSERT_EQ(p.seccomp.len, 2);
  EXPECT_EQ(p.seccomp.filter[1].code, 0x15);
  EXPECT_EQ(p.seccomp.filter[1].k, 59u);
  EXPECT_EQ(p.fds, (std::vector<int>{-1, 11, 11, 12, 13}));
  EXPECT_EQ(p.fd_scratch_base, 14);
  EXPECT_STREQ(p.argv[0], "/usr/bin/python");
  EXPECT_STREQ(p.argv[1], "-u");
  EXPECT_EQ(p.argv[2], nullptr);
  EXPECT_STREQ(p.envp[0], "LANG=C.UTF-8");
  EXPECT_EQ(p.envp[1], nullptr);
}

TEST(PlanCodec, TruncatedOrPaddedPlansAreRefused) {
  Sample s;
  const auto bytes = encode_plan(s.plan);
  for (size_t cut : {size_t{0}, size_t{5}, bytes.size() / 2, bytes.size() - 1}) {
    DecodedPlan d;
    EXPECT_FALSE(decode_plan(std::string_view(bytes).substr(0, cut), d)) << cut;
  }
  DecodedPlan d;
  EXPECT_FALSE(decode_plan(bytes + "x", d));
}

TEST(PlanCodec, AHugeCountIsRefusedWithoutAllocating) {
  Sample s;
  s.plan.mounts.clear();
  auto bytes = encode_plan(s.plan);
  // The mount count follows three descriptors and the root directory.
  const size_t at = 3 * 8 + 8 + strlen(s.plan.root_dir);
  const int64_t huge = int64_t{1} << 40;
  bytes.replace(at, 8, reinterpret_cast<const char*>(&huge), 8);
  DecodedPlan d;
  EXPECT_FALSE(decode_plan(bytes, d));
}
