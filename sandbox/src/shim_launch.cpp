#include "shim_launch.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>

#include "plan_codec.hpp"
#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::sandbox::detail {

namespace {

class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&fa_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &fa_; }

 private:
  posix_spawn_file_actions_t fa_;
};

class Attributes {
 public:
  Attributes() {
    posix_spawnattr_init(&a_);
    // A clean signal state: nothing blocked or ignored that thawd's threads set.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&a_, &none);
    posix_spawnattr_setsigdefault(&a_, &all);
    posix_spawnattr_setflags(&a_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ~Attributes() { posix_spawnattr_destroy(&a_); }
  Attributes(const Attributes&) = delete;
  Attributes& operator=(const Attributes&) = delete;
  posix_spawnattr_t* get() { return &a_; }

 private:
  posix_spawnattr_t a_;
};

}  // namespace

pid_t launch_shim(const ChildPlan& plan) {
  // The helper gets the plan's descriptors at new numbers above all of them
  // (so no dup2 overwrites a source), and the plan is rewritten to match.
  int highest = std::max({plan.report_fd, plan.user_ns_fd, plan.net_ns_fd});
  for (int fd : plan.fds) highest = std::max(highest, fd);
  UniqueFd blob(memfd_create("thaw-child-plan", MFD_CLOEXEC));
  if (!blob) throw_errno("sandbox: memfd_create");
  highest = std::max(highest, blob.get());

  FileActions actions;
  std::map<int, int> renumbered;
  int next = highest + 1;
  const auto move = [&](int fd) {
    if (fd < 0) return fd;
    auto [it, added] = renumbered.emplace(fd, next);
    if (added) {
      posix_spawn_file_actions_adddup2(actions.get(), fd, next);
      ++next;
    }
    return it->second;
  };
  ChildPlan moved = plan;
  moved.report_fd = move(plan.report_fd);
  moved.user_ns_fd = move(plan.user_ns_fd);
  moved.net_ns_fd = move(plan.net_ns_fd);
  for (auto& fd : moved.fds) fd = move(fd);
  const int blob_fd = next++;
  posix_spawn_file_actions_adddup2(actions.get(), blob.get(), blob_fd);
  moved.fd_scratch_base = std::max<int>(next, static_cast<int>(moved.fds.size()) + 1);

  const auto bytes = encode_plan(moved);
  for (size_t off = 0; off < bytes.size();) {
    const ssize_t n = write(blob.get(), bytes.data() + off, bytes.size() - off);
    if (n <= 0) throw_errno("sandbox: writing the child plan");
    off += static_cast<size_t>(n);
  }
  if (lseek(blob.get(), 0, SEEK_SET) != 0) throw_errno("sandbox: rewinding the child plan");

  const std::string fd_arg = std::to_string(blob_fd);
  char* argv[] = {const_cast<char*>(THAW_SANDBOX_SHIM), const_cast<char*>(fd_arg.c_str()), nullptr};
  char* envp[] = {nullptr};
  Attributes attributes;
  pid_t pid;
  const int err = posix_spawn(&pid, THAW_SANDBOX_SHIM, actions.get(), attributes.get(), argv, envp);
  if (err != 0) throw_errno(std::string("sandbox: starting ") + THAW_SANDBOX_SHIM, err);
  return pid;
}

}  // namespace thaw::sandbox::detail
