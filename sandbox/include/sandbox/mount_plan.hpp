#pragma once
// The filesystem of an instance as data: an ordered list of typed mount
// operations, built before the clone and executed by the child. Targets are
// relative to the new root; sources of binds are host paths resolved before
// pivot_root, or paths inside the new root when `source_inside_root` is set.

#include <string>
#include <vector>

namespace thaw::sandbox {

enum class MountKind {
  Bind,           // read-write bind of a host path
  ReadOnlyBind,   // bind, then remounted read-only, nosuid, nodev
  Proc,           // a new procfs for the instance's pid namespace
  MaskWithNull,   // hide a file by binding /dev/null over it
  ReadOnlyAgain,  // remount an existing path read-only (for /proc/sys and friends)
};

struct MountOp {
  MountKind kind;
  std::string source;  // empty for Proc and ReadOnlyAgain
  std::string target;  // relative to the new root, no leading '/'
};

using MountPlan = std::vector<MountOp>;

// Where the parts of an instance's filesystem come from on the host.
struct FilesystemSources {
  std::string code_dir;     // mounted read-only at /var/task; empty: not mounted
  std::string runtime_dir;  // mounted read-only at /opt/thaw/runtime; empty: not mounted
  std::string tmp_dir;      // the instance's private /tmp (thawd mounts a sized tmpfs there)
  std::string etc_dir;  // mounted read-only at /etc/thaw (resolv.conf, hosts); empty: not mounted
  std::vector<MountOp> extra;  // more binds, executed after the standard ones
};

// The standard plan: /usr, /var/task, /opt/thaw/runtime, /tmp, /proc with its
// sensitive files masked, and the few device nodes of a minimal /dev.
MountPlan standard_mount_plan(const FilesystemSources& sources);

// "read-only bind /usr -> usr" and the like, for error messages and logs.
std::string describe(const MountOp& op);
const char* kind_name(MountKind kind);

// Checks targets: relative, no "..", no empty component. Throws Error.
void validate(const MountPlan& plan);

}  // namespace thaw::sandbox
