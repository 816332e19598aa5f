#include <gtest/gtest.h>

#include "sandbox/mount_plan.hpp"
#include "thaw/error.hpp"

using namespace thaw::sandbox;

namespace {
const MountOp* find(const MountPlan& plan, const std::string& target) {
  for (const auto& op : plan)
    if (op.target == target) return &op;
  return nullptr;
}
}  // namespace

TEST(MountPlan, StandardPlanMountsUsrCodeRuntimeAndTmp) {
  const auto plan = standard_mount_plan({"/store/abc", "/rt/python", "/run/i1/tmp", "", {}});
  ASSERT_NE(find(plan, "usr"), nullptr);
  EXPECT_EQ(find(plan, "usr")->kind, MountKind::ReadOnlyBind);
  EXPECT_EQ(find(plan, "var/task")->source, "/store/abc");
  EXPECT_EQ(find(plan, "var/task")->kind, MountKind::ReadOnlyBind);
  EXPECT_EQ(find(plan, "opt/thaw/runtime")->kind, MountKind::ReadOnlyBind);
  EXPECT_EQ(find(plan, "tmp")->kind, MountKind::Bind);
  EXPECT_EQ(find(plan, "proc")->kind, MountKind::Proc);
  EXPECT_NO_THROW(validate(plan));
}

TEST(MountPlan, ProcIsMountedBeforeItsMasksAndDevicesBeforeTheMasksUseThem) {
  const auto plan = standard_mount_plan({"/c", "", "/t", "", {}});
  size_t proc = 0, kcore = 0, devnull = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (plan[i].target == "proc") proc = i;
    if (plan[i].target == "proc/kcore") kcore = i;
    if (plan[i].target == "dev/null") devnull = i;
  }
  EXPECT_LT(proc, kcore);
  EXPECT_LT(devnull, kcore);
  EXPECT_EQ(plan[kcore].kind, MountKind::MaskWithNull);
  EXPECT_EQ(find(plan, "proc/sys")->kind, MountKind::ReadOnlyAgain);
}

TEST(MountPlan, NoHostSysOrDevIsMounted) {
  const auto plan = standard_mount_plan({"/c", "/r", "/t", "", {}});
  for (const auto& op : plan) {
    EXPECT_NE(op.target, "sys");
    EXPECT_NE(op.source, "/dev");
    EXPECT_NE(op.source, "/sys");
    EXPECT_NE(op.source, "/");
  }
}

TEST(MountPlan, OmitsRuntimeWhenNotGiven) {
  const auto plan = standard_mount_plan({"/c", "", "/t", "", {}});
  EXPECT_EQ(find(plan, "opt/thaw/runtime"), nullptr);
}

TEST(MountPlan, ValidateRefusesEscapingOrAbsoluteTargets) {
  for (const char* bad : {"/etc", "../etc", "var/../../etc", "a//b", "", "a/"}) {
    MountPlan plan{{MountKind::Bind, "/x", bad}};
    EXPECT_THROW(validate(plan), thaw::Error) << bad;
  }
}

TEST(MountPlan, ValidateRefusesBindWithoutSource) {
  MountPlan plan{{MountKind::ReadOnlyBind, "", "usr"}};
  EXPECT_THROW(validate(plan), thaw::Error);
}

TEST(MountPlan, DescribeReadsLikeASentence) {
  EXPECT_EQ(describe({MountKind::ReadOnlyBind, "/usr", "usr"}), "read-only bind /usr -> /usr");
  EXPECT_EQ(describe({MountKind::Proc, "", "proc"}), "proc /proc");
}
