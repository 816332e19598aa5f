#include "snapshots/criu_environment.hpp"

#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "sandbox/cgroup.hpp"
#include "thaw/error.hpp"

namespace thaw::snapshots {

namespace {

std::string yard_path;     // set before any thread starts, read-only after
std::string scratch_path;  // likewise

// The directory CRIU would give a hierarchy with these controllers ("memory",
// "cpu,cpuacct", "systemd" for name=systemd, "unified" for cgroup2) and the
// mount options that name the hierarchy.
std::pair<std::string, std::string> yard_entry(const std::string& controllers) {
  if (controllers.empty()) return {"unified", ""};
  std::string dir;
  bool named = false;
  std::istringstream names(controllers);
  for (std::string n; std::getline(names, n, ',');) {
    if (n.rfind("name=", 0) == 0) {
      named = true;
      n.erase(0, 5);
    }
    dir += (dir.empty() ? "" : ",") + n;
  }
  // "none" keeps a named hierarchy from being taken for "every controller".
  return {dir, named ? "none," + controllers : controllers};
}

// Every hierarchy this process belongs to, mounted once under a private tmpfs.
// Without it CRIU mounts each one for every restore, and on this kernel the
// cgroup2 mount alone costs 5-19 ms unless another one was made a moment
// before. A hierarchy that fails to mount is left out: CRIU then mounts it.
std::string make_cgroup_yard() {
  std::string yard = "/run/thaw/cgroup-yard";
  std::error_code ec;
  std::filesystem::create_directories(yard, ec);
  if (ec || mount("thaw-cgroup-yard", yard.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=0700,size=64k") != 0)
    return "";
  for (const auto& membership : sandbox::cgroup_memberships("/proc/self/cgroup")) {
    const auto [dir, options] = yard_entry(membership.controllers);
    const auto target = yard + "/" + dir;
    if (mkdir(target.c_str(), 0700) != 0) continue;
    const bool v2 = dir == "unified";
    if (mount("none", target.c_str(), v2 ? "cgroup2" : "cgroup", 0,
              v2 ? nullptr : options.c_str()) != 0)
      rmdir(target.c_str());
  }
  return yard;
}

}  // namespace

std::string cgroup_yard() {
  return yard_path;
}

std::string criu_scratch_dir() {
  return scratch_path;
}

std::string prepare_criu_environment() {
  if (unshare(CLONE_NEWNS) != 0) throw_errno("criu environment: unshare(CLONE_NEWNS)");
  // Slave: the host's later mounts still reach us; ours never reach the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
    throw_errno("criu environment: make / a slave mount");
  struct statfs fs {};
  std::string what = "private mount namespace, the host's tmpfs /run";
  if (statfs("/run", &fs) != 0 || fs.f_type != TMPFS_MAGIC) {
    if (mount("thaw-run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0)
      throw_errno("criu environment: mount tmpfs on /run");
    what = "private mount namespace, tmpfs on /run";
  }
  yard_path = make_cgroup_yard();
  std::error_code ec;
  if (std::filesystem::create_directories("/run/thaw/criu", ec); !ec)
    scratch_path = "/run/thaw/criu";
  return what + (yard_path.empty() ? "" : ", cgroup yard " + yard_path);
}

std::string expose_directory(const std::string& dir, const std::string& name) {
  auto target = "/run/thaw/" + name;
  std::error_code ec;
  std::filesystem::create_directories(target, ec);
  if (ec) throw Error("criu environment: create " + target + ": " + ec.message());
  std::filesystem::permissions("/run/thaw", std::filesystem::perms(0755), ec);
  if (mount(dir.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    throw_errno("criu environment: bind " + dir + " on " + target);
  return target;
}

std::string mount_snapshot_cache(uint64_t bytes) {
  std::string target = "/run/thaw/snapshot-cache";
  std::error_code ec;
  std::filesystem::create_directories(target, ec);
  if (ec) throw Error("snapshot cache: create " + target + ": " + ec.message());
  // 0711 as the state directory's snapshots: restored tasks reach their
  // images by name from inside their namespaces, nobody lists them.
  const auto options = "mode=0711,size=" + std::to_string(bytes);
  // A kernel without huge pages for tmpfs refuses the option: plain pages then.
  if (mount("thaw-snapshot-cache", target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            (options + ",huge=within_size").c_str()) != 0 &&
      mount("thaw-snapshot-cache", target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            options.c_str()) != 0)
    throw_errno("snapshot cache: mount a tmpfs on " + target);
  return target;
}

}  // namespace thaw::snapshots
