#include "sandbox/mount_plan.hpp"

#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

// Files of /proc that reveal or change host state; masked as Docker and crun do.
constexpr const char* kMaskedProcFiles[] = {
    "proc/kcore",         "proc/keys",          "proc/timer_list", "proc/sched_debug",
    "proc/sysrq-trigger", "proc/latency_stats", "proc/kallsyms",
};
// Directories of /proc that stay readable but must not be written.
constexpr const char* kReadOnlyProcDirs[] = {"proc/sys", "proc/irq", "proc/bus", "proc/fs"};
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom"};

}  // namespace

MountPlan standard_mount_plan(const FilesystemSources& sources) {
  MountPlan plan;
  plan.push_back({MountKind::ReadOnlyBind, "/usr", "usr"});
  for (const char* dev : kDevices) {
    plan.push_back({MountKind::Bind, std::string("/dev/") + dev, std::string("dev/") + dev});
  }
  if (!sources.code_dir.empty())
    plan.push_back({MountKind::ReadOnlyBind, sources.code_dir, "var/task"});
  if (!sources.runtime_dir.empty())
    plan.push_back({MountKind::ReadOnlyBind, sources.runtime_dir, "opt/thaw/runtime"});
  if (!sources.tmp_dir.empty()) plan.push_back({MountKind::Bind, sources.tmp_dir, "tmp"});
  if (!sources.etc_dir.empty())
    plan.push_back({MountKind::ReadOnlyBind, sources.etc_dir, "etc/thaw"});
  plan.push_back({MountKind::Proc, "", "proc"});
  for (const char* file : kMaskedProcFiles)
    plan.push_back({MountKind::MaskWithNull, "dev/null", file});
  for (const char* dir : kReadOnlyProcDirs) plan.push_back({MountKind::ReadOnlyAgain, "", dir});
  for (const auto& op : sources.extra) plan.push_back(op);
  return plan;
}

const char* kind_name(MountKind kind) {
  switch (kind) {
    case MountKind::Bind:
      return "bind";
    case MountKind::ReadOnlyBind:
      return "read-only bind";
    case MountKind::Proc:
      return "proc";
    case MountKind::MaskWithNull:
      return "mask";
    case MountKind::ReadOnlyAgain:
      return "read-only remount";
  }
  return "?";
}

std::string describe(const MountOp& op) {
  std::string text = kind_name(op.kind);
  if (!op.source.empty()) text += " " + op.source + " ->";
  return text + " /" + op.target;
}

void validate(const MountPlan& plan) {
  for (const auto& op : plan) {
    const auto& t = op.target;
    if (t.empty() || t.front() == '/' || t.back() == '/')
      throw Error("mount plan: target must be a relative path: \"" + t + "\"");
    size_t start = 0;
    while (start <= t.size()) {
      size_t end = t.find('/', start);
      if (end == std::string::npos) end = t.size();
      const auto part = t.substr(start, end - start);
      if (part.empty() || part == "." || part == "..")
        throw Error("mount plan: target has an empty, '.' or '..' component: \"" + t + "\"");
      start = end + 1;
    }
    const bool needs_source = op.kind == MountKind::Bind || op.kind == MountKind::ReadOnlyBind ||
                              op.kind == MountKind::MaskWithNull;
    if (needs_source && op.source.empty())
      throw Error("mount plan: " + std::string(kind_name(op.kind)) + " of /" + t +
                  " has no source");
  }
}

}  // namespace thaw::sandbox
