#include "snapshots/criu_environment.hpp"

#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>

#include "sandbox/error.hpp"

namespace thaw::snapshots {

std::string prepare_criu_environment() {
  struct statfs fs {};
  if (statfs("/run", &fs) == 0 && fs.f_type == TMPFS_MAGIC) return "kept the host's tmpfs /run";
  if (unshare(CLONE_NEWNS) != 0) throw_errno("criu environment: unshare(CLONE_NEWNS)");
  // Slave: the host's later mounts still reach us; ours never reach the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
    throw_errno("criu environment: make / a slave mount");
  if (mount("thaw-run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0)
    throw_errno("criu environment: mount tmpfs on /run");
  return "private mount namespace, tmpfs on /run";
}

}  // namespace thaw::snapshots
