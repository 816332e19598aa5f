// Limits -> cgroup files, for v1 and v2. Pure arithmetic, unit-tested.
#include <cmath>

#include "sandbox/cgroup.hpp"

namespace thaw::sandbox {

namespace {
constexpr uint64_t kCpuPeriodUs = 100000;  // the kernel's default CFS period
}

const char* mode_name(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::V1:
      return "v1";
    case CgroupMode::V2:
      return "v2";
    case CgroupMode::Hybrid:
      return "hybrid";
  }
  return "?";
}

int CgroupLayout::version_of(const std::string& controller) const {
  auto it = controllers.find(controller);
  return it == controllers.end() ? 0 : it->second;
}

double cpus_for_memory(uint64_t memory_mb) {
  return static_cast<double>(memory_mb) / 1769.0;
}

std::vector<CgroupSetting> cgroup_settings(const CgroupLimits& limits, const CgroupLayout& layout,
                                           bool swap_accounting) {
  std::vector<CgroupSetting> out;
  const auto bytes = std::to_string(limits.memory_bytes);
  // At least 1 ms of CPU per period, or the kernel refuses the quota.
  const auto quota_us = std::max<uint64_t>(
      1000, static_cast<uint64_t>(std::llround(limits.cpus * static_cast<double>(kCpuPeriodUs))));

  if (layout.version_of("memory") == 2) {
    out.push_back({"memory", "memory.max", bytes});
    out.push_back({"memory", "memory.swap.max", "0"});
  } else if (layout.version_of("memory") == 1) {
    out.push_back({"memory", "memory.limit_in_bytes", bytes});
    // memsw is memory + swap: equal to the memory limit means no swap. Without
    // swap accounting, swappiness 0 keeps the instance's pages out of swap.
    if (swap_accounting) out.push_back({"memory", "memory.memsw.limit_in_bytes", bytes});
    out.push_back({"memory", "memory.swappiness", "0"});
  }
  // cpus <= 0 means no quota at all.
  const bool unlimited = limits.cpus <= 0;
  const auto quota = unlimited ? std::string() : std::to_string(quota_us);
  if (layout.version_of("cpu") == 2) {
    out.push_back(
        {"cpu", "cpu.max", (unlimited ? "max" : quota) + " " + std::to_string(kCpuPeriodUs)});
  } else if (layout.version_of("cpu") == 1) {
    out.push_back({"cpu", "cpu.cfs_period_us", std::to_string(kCpuPeriodUs)});
    out.push_back({"cpu", "cpu.cfs_quota_us", unlimited ? "-1" : quota});
  }
  if (layout.version_of("pids") != 0)
    out.push_back({"pids", "pids.max", std::to_string(limits.pids_max)});
  return out;
}

}  // namespace thaw::sandbox
