// Instance cgroups through libcgroup; statistics read straight from the files.
#include <dirent.h>
#include <fcntl.h>
#include <libcgroup.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "cgroup_internal.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/cgroup_spares.hpp"
#include "sandbox/migration_primer.hpp"
#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace detail {

void init_libcgroup() {
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [] { rc = cgroup_init(); });
  if (rc != 0) throw Error(std::string("cgroup: libcgroup init: ") + cgroup_strerror(rc));
}

const CgroupLayout& host_cgroup_layout() {
  static const CgroupLayout layout = detect_cgroup_layout();
  return layout;
}

const std::vector<std::string>& used_controllers() {
  // cpuacct is its own hierarchy on some v1 hosts (this one): CPU time is read there.
  static const auto controllers = [] {
    std::vector<std::string> out;
    for (const char* c : {"memory", "cpu", "cpuacct", "pids"})
      if (host_cgroup_layout().version_of(c) != 0) out.emplace_back(c);
    return out;
  }();
  return controllers;
}

std::vector<std::string> group_directories(const std::string& path) {
  std::vector<std::string> dirs;
  for (const auto& c : used_controllers()) {
    auto dir = controller_mount(c) + "/" + path;
    bool seen = false;
    for (const auto& d : dirs) seen |= d == dir;
    if (!seen) dirs.push_back(dir);
  }
  return dirs;
}

}  // namespace detail

namespace {

using detail::init_libcgroup;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool exists(const std::string& path) {
  return access(path.c_str(), F_OK) == 0;
}

bool write_value(const std::string& path, const std::string& value) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  const int err = errno;
  close(fd);
  errno = err;
  return ok;
}

uint64_t read_u64(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  in >> v;
  return v;
}

// "key value" lines, as in memory.events, cpu.stat and memory.oom_control.
uint64_t read_keyed(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

}  // namespace

CgroupLayout detect_cgroup_layout() {
  CgroupLayout layout;
  struct statfs fs {};
  if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) {
    layout.mode = CgroupMode::V2;
    std::istringstream in(read_file("/sys/fs/cgroup/cgroup.controllers"));
    for (std::string c; in >> c;) layout.controllers[c] = 2;
    return layout;
  }
  // mountinfo: "... - <fstype> <source> <super options>"
  std::ifstream mi("/proc/self/mountinfo");
  std::string unified;
  for (std::string line; std::getline(mi, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string fstype, source, options;
    rest >> fstype >> source >> options;
    if (fstype == "cgroup") {
      std::istringstream opts(options);
      for (std::string o; std::getline(opts, o, ',');)
        if (o != "rw" && o != "ro" && o.find('=') == std::string::npos) layout.controllers[o] = 1;
    } else if (fstype == "cgroup2" && unified.empty()) {
      std::istringstream fields(line);
      std::string id, parent, devno, root, mount_point;
      fields >> id >> parent >> devno >> root >> mount_point;
      unified = mount_point;
    }
  }
  if (!unified.empty()) {
    layout.mode = CgroupMode::Hybrid;
    std::istringstream in(read_file(unified + "/cgroup.controllers"));
    for (std::string c; in >> c;)
      if (!layout.controllers.count(c)) layout.controllers[c] = 2;
  }
  return layout;
}

std::vector<CgroupMembership> cgroup_memberships(const std::string& proc_file) {
  std::vector<CgroupMembership> out;
  std::ifstream in(proc_file);
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    out.push_back({line.substr(first + 1, second - first - 1), line.substr(second + 1)});
  }
  return out;
}

std::string controller_mount(const std::string& controller) {
  init_libcgroup();
  char* mount = nullptr;
  if (cgroup_get_subsys_mount_point(controller.c_str(), &mount) != 0 || !mount) return "";
  std::string out = mount;
  free(mount);
  return out;
}

InstanceCgroup::InstanceCgroup(std::string path, const CgroupLimits& limits)
    : path_(std::move(path)) {
  init_libcgroup();
  const auto& layout = detail::host_cgroup_layout();
  // A host fact, like the layout: looked up once.
  static const bool swap_accounting =
      layout.version_of("memory") == 1 &&
      exists(controller_mount("memory") + "/memory.memsw.limit_in_bytes");

  group_ = cgroup_new_cgroup(path_.c_str());
  if (!group_) throw Error("cgroup: cannot describe group " + path_);
  for (const auto& c : detail::used_controllers()) {
    if (!cgroup_add_controller(group_, c.c_str())) {
      cgroup_free(&group_);
      throw Error("cgroup: add controller " + c);
    }
  }
  // A spare renamed into place (cgroup_spares.hpp) only needs its limits,
  // written straight to the files: libcgroup rereads /proc/mounts for each.
  const auto slash = path_.rfind('/');
  const bool spare = slash != std::string::npos &&
                     take_cgroup_spare(path_.substr(0, slash), path_.substr(slash + 1));
  std::string failure;
  for (const auto& s : cgroup_settings(limits, layout, swap_accounting)) {
    auto* ctrl = cgroup_get_controller(group_, s.controller.c_str());
    if (!ctrl) continue;
    if (spare) {
      if (!write_value(controller_mount(s.controller) + "/" + path_ + "/" + s.name, s.value))
        failure = "set " + s.name + ": " + std::strerror(errno);
    } else if (int rc = cgroup_add_value_string(ctrl, s.name.c_str(), s.value.c_str()); rc != 0) {
      failure = "set " + s.name + ": " + cgroup_strerror(rc);
    }
    if (!failure.empty()) break;
  }
  // ignore_ownership: otherwise libcgroup chowns every file of the group, which
  // costs milliseconds and changes nothing (thawd owns them already).
  if (int rc = failure.empty() && !spare ? cgroup_create_cgroup(group_, 1) : 0; rc != 0)
    failure = std::string("create: ") + cgroup_strerror(rc);
  if (!failure.empty()) {
    if (spare) remove();
    cgroup_free(&group_);
    throw Error("cgroup: " + path_ + ": " + failure);
  }
  // A group is made to have a task moved in, a few ms from now (migration_primer.hpp).
  prime_task_migration();
}

InstanceCgroup::~InstanceCgroup() {
  try {
    remove();
  } catch (...) {
    // A destructor cannot report; reap_orphan_cgroups finds what stayed.
  }
  if (group_) cgroup_free(&group_);
}

const std::vector<std::string>& InstanceCgroup::controllers() const {
  return detail::used_controllers();
}

std::vector<std::string> InstanceCgroup::directories() const {
  return detail::group_directories(path_);
}

void InstanceCgroup::attach(pid_t pid) const {
  if (int rc = cgroup_attach_task_pid(group_, pid); rc != 0)
    throw Error("cgroup: attach pid " + std::to_string(pid) + " to " + path_ + ": " +
                cgroup_strerror(rc));
}

bool InstanceCgroup::track(pid_t pid) const {
  const auto pids = controller_mount("pids");
  if (pids.empty() || pids == controller_mount("memory")) return false;
  const auto procs = pids + "/" + path_ + "/cgroup.procs";
  std::ofstream out(procs);
  out << pid << std::flush;
  if (!out) throw Error("cgroup: track pid " + std::to_string(pid) + " in " + procs);
  return true;
}

void InstanceCgroup::set_cpus(double cpus) const {
  const auto& layout = detail::host_cgroup_layout();
  CgroupLimits limits;
  limits.cpus = cpus;
  struct cgroup* change = cgroup_new_cgroup(path_.c_str());
  if (!change) throw Error("cgroup: cannot describe group " + path_);
  auto* ctrl = cgroup_add_controller(change, "cpu");
  for (const auto& s : cgroup_settings(limits, layout, false)) {
    if (s.controller != "cpu") continue;
    cgroup_add_value_string(ctrl, s.name.c_str(), s.value.c_str());
  }
  const int rc = ctrl ? cgroup_modify_cgroup(change) : ECGFAIL;
  cgroup_free(&change);
  if (rc != 0) throw Error("cgroup: set CPU quota of " + path_ + ": " + cgroup_strerror(rc));
}

uint64_t InstanceCgroup::memory_peak_bytes() const {
  if (peak_fd_ < 0) {
    const auto& layout = detail::host_cgroup_layout();
    const auto file =
        controller_mount("memory") + "/" + path_ +
        (layout.version_of("memory") == 2 ? "/memory.peak" : "/memory.max_usage_in_bytes");
    peak_fd_ = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (peak_fd_ < 0) return 0;
  }
  char buf[32];
  const auto n = pread(peak_fd_, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return std::strtoull(buf, nullptr, 10);
}

CgroupUsage InstanceCgroup::usage() const {
  const auto& layout = detail::host_cgroup_layout();
  CgroupUsage u;
  const auto mem = controller_mount("memory") + "/" + path_;
  const auto cpu = controller_mount("cpu") + "/" + path_;
  const auto cpuacct = controller_mount("cpuacct") + "/" + path_;
  if (layout.version_of("memory") == 2) {
    u.memory_peak_bytes = read_u64(mem + "/memory.peak");
    u.oom_kills = read_keyed(mem + "/memory.events", "oom_kill");
  } else {
    u.memory_peak_bytes = read_u64(mem + "/memory.max_usage_in_bytes");
    u.oom_kills = read_keyed(mem + "/memory.oom_control", "oom_kill");
  }
  if (layout.version_of("cpu") == 2)
    u.cpu_usage_ns = read_keyed(cpu + "/cpu.stat", "usage_usec") * 1000;
  else
    u.cpu_usage_ns = read_u64(cpuacct + "/cpuacct.usage");
  return u;
}

void InstanceCgroup::remove() {
  if (peak_fd_ >= 0) close(std::exchange(peak_fd_, -1));
  if (removed_ || !group_) return;
  cgroup_delete_cgroup_ext(group_, CGFLAG_DELETE_IGNORE_MIGRATION);
  // libcgroup has been seen to leave directories behind: check, and retry by hand.
  for (const auto& dir : directories()) {
    if (exists(dir) && rmdir(dir.c_str()) != 0 && errno != ENOENT)
      throw_errno("cgroup: remove " + dir);
  }
  removed_ = true;
}

namespace {

// Removes `dir` and the groups below it, deepest first, unless a process uses them.
bool remove_unused_tree(const std::string& dir, int& removed) {
  DIR* d = opendir(dir.c_str());
  if (!d) return false;
  bool empty = true;
  while (auto* e = readdir(d)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    empty &= remove_unused_tree(dir + "/" + e->d_name, removed);
  }
  closedir(d);
  if (!empty || !read_file(dir + "/cgroup.procs").empty()) return false;
  if (rmdir(dir.c_str()) != 0) return false;
  ++removed;
  return true;
}

}  // namespace

int reap_orphan_cgroups(const std::string& parent) {
  init_libcgroup();
  int removed = 0;
  for (const auto& base : detail::group_directories(parent)) {
    DIR* d = opendir(base.c_str());
    if (!d) continue;
    while (auto* e = readdir(d)) {
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      remove_unused_tree(base + "/" + e->d_name, removed);
    }
    closedir(d);
  }
  return removed;
}

bool end_group_processes(const std::string& parent, const std::string& name,
                         std::chrono::milliseconds wait) {
  init_libcgroup();
  const auto groups = detail::group_directories(parent + "/" + name);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    bool empty = true;
    for (const auto& dir : groups) {
      std::istringstream pids(read_file(dir + "/cgroup.procs"));
      for (long pid; pids >> pid;) {
        empty = false;
        kill(static_cast<pid_t>(pid), SIGKILL);
      }
    }
    if (empty) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void remove_cgroup_parent(const std::string& parent) {
  keep_cgroup_spares(parent, 0);
  reap_orphan_cgroups(parent);
  for (const auto& dir : detail::group_directories(parent)) rmdir(dir.c_str());
}

}  // namespace thaw::sandbox
