#include <gtest/gtest.h>

#include "sandbox/cgroup.hpp"

using namespace thaw::sandbox;

namespace {
CgroupLayout layout_with(int version) {
  CgroupLayout l;
  l.mode = version == 2 ? CgroupMode::V2 : CgroupMode::V1;
  for (const char* c : {"memory", "cpu", "pids"}) l.controllers[c] = version;
  return l;
}
std::string value_of(const std::vector<CgroupSetting>& s, const std::string& name) {
  for (const auto& x : s)
    if (x.name == name) return x.value;
  return "<absent>";
}
}  // namespace

TEST(CgroupSettings, LambdasRuleOneCpuPer1769MB) {
  EXPECT_DOUBLE_EQ(cpus_for_memory(1769), 1.0);
  EXPECT_NEAR(cpus_for_memory(128), 0.0723, 0.0001);
  EXPECT_NEAR(cpus_for_memory(10240), 5.788, 0.001);
}

TEST(CgroupSettings, V1MemoryWithoutSwap) {
  CgroupLimits l{256ull << 20, 64, 0.5};
  const auto s = cgroup_settings(l, layout_with(1), true);
  EXPECT_EQ(value_of(s, "memory.limit_in_bytes"), "268435456");
  EXPECT_EQ(value_of(s, "memory.memsw.limit_in_bytes"), "268435456");
  EXPECT_EQ(value_of(s, "memory.swappiness"), "0");
  EXPECT_EQ(value_of(s, "pids.max"), "64");
  EXPECT_EQ(value_of(s, "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(value_of(s, "cpu.cfs_quota_us"), "50000");
}

TEST(CgroupSettings, V1MemswComesAfterTheMemoryLimit) {
  const auto s = cgroup_settings({}, layout_with(1), true);
  size_t mem = 0, memsw = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i].name == "memory.limit_in_bytes") mem = i;
    if (s[i].name == "memory.memsw.limit_in_bytes") memsw = i;
  }
  EXPECT_LT(mem, memsw);
}

TEST(CgroupSettings, V1WithoutSwapAccountingSkipsMemsw) {
  const auto s = cgroup_settings({}, layout_with(1), false);
  EXPECT_EQ(value_of(s, "memory.memsw.limit_in_bytes"), "<absent>");
  EXPECT_EQ(value_of(s, "memory.swappiness"), "0");
}

TEST(CgroupSettings, V2Names) {
  CgroupLimits l{1769ull << 20, 100, cpus_for_memory(1769)};
  const auto s = cgroup_settings(l, layout_with(2), false);
  EXPECT_EQ(value_of(s, "memory.max"), std::to_string(1769ull << 20));
  EXPECT_EQ(value_of(s, "memory.swap.max"), "0");
  EXPECT_EQ(value_of(s, "cpu.max"), "100000 100000");
  EXPECT_EQ(value_of(s, "pids.max"), "100");
  EXPECT_EQ(value_of(s, "memory.limit_in_bytes"), "<absent>");
}

TEST(CgroupSettings, TinyCpuShareIsRaisedToTheKernelsMinimum) {
  CgroupLimits l{128ull << 20, 10, 0.001};
  EXPECT_EQ(value_of(cgroup_settings(l, layout_with(1), false), "cpu.cfs_quota_us"), "1000");
}

TEST(CgroupSettings, MissingControllerWritesNothingForIt) {
  CgroupLayout l;
  l.controllers["memory"] = 1;
  const auto s = cgroup_settings({}, l, false);
  EXPECT_EQ(value_of(s, "pids.max"), "<absent>");
  EXPECT_EQ(value_of(s, "cpu.cfs_quota_us"), "<absent>");
}

TEST(CgroupSettings, ZeroCpusMeansNoQuota) {
  CgroupLimits l{128ull << 20, 10, 0};
  EXPECT_EQ(value_of(cgroup_settings(l, layout_with(1), false), "cpu.cfs_quota_us"), "-1");
  EXPECT_EQ(value_of(cgroup_settings(l, layout_with(2), false), "cpu.max"), "max 100000");
}
