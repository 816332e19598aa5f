#include "snapshots/criu_environment.hpp"

#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>

#include <filesystem>

#include "sandbox/error.hpp"

namespace thaw::snapshots {

std::string prepare_criu_environment() {
  if (unshare(CLONE_NEWNS) != 0) throw_errno("criu environment: unshare(CLONE_NEWNS)");
  // Slave: the host's later mounts still reach us; ours never reach the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
    throw_errno("criu environment: make / a slave mount");
  struct statfs fs {};
  if (statfs("/run", &fs) == 0 && fs.f_type == TMPFS_MAGIC)
    return "private mount namespace, the host's tmpfs /run";
  if (mount("thaw-run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0)
    throw_errno("criu environment: mount tmpfs on /run");
  return "private mount namespace, tmpfs on /run";
}

std::string expose_directory(const std::string& dir, const std::string& name) {
  const auto target = "/run/thaw/" + name;
  std::error_code ec;
  std::filesystem::create_directories(target, ec);
  if (ec) throw Error("criu environment: create " + target + ": " + ec.message());
  std::filesystem::permissions("/run/thaw", std::filesystem::perms(0755), ec);
  if (mount(dir.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    throw_errno("criu environment: bind " + dir + " on " + target);
  return target;
}

}  // namespace thaw::snapshots
