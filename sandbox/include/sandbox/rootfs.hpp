#pragma once
// The root of every instance: a small directory of mount points and generated
// /etc files, shared by all instances and mounted read-only. Per-instance
// mounts (/var/task, /tmp, /proc...) go on top of it inside each mount namespace.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace thaw {
class WorkQueue;
}  // namespace thaw

namespace thaw::sandbox {

struct RootTemplateOptions {
  uid_t function_uid = 1000;  // inside the user namespace
  gid_t function_gid = 1000;
};

// Builds (or rebuilds) the template under `dir`; returns `dir`. The host's
// ld.so.cache, localtime, CA certificates and alternatives are copied in, so an
// instance needs no bind mount of anything in the host's /etc.
std::string prepare_root_template(const std::string& dir, const RootTemplateOptions& options = {});

// How many files and directories a /tmp of `size_bytes` may hold.
uint64_t scratch_inodes(uint64_t size_bytes);

// A private /tmp for one instance: a tmpfs of `size_bytes` mounted by thawd at
// `dir`, owned by the instance's root. Unmounted and removed on destruction.
class ScratchMount {
 public:
  ScratchMount(std::string dir, uint64_t size_bytes, uid_t host_uid, gid_t host_gid);
  ~ScratchMount();
  ScratchMount(const ScratchMount&) = delete;
  ScratchMount& operator=(const ScratchMount&) = delete;
  const std::string& dir() const { return dir_; }
  // Unmounts thawd's own view once the instance has bound the tmpfs at its
  // /tmp (the instance keeps it alive). Each mount left in thawd's namespace
  // is copied into, and torn down from, every later sandbox: with hundreds
  // of instances that made spawning several times slower.
  // With `later`, on its thread: a lazy unmount waits for an RCU grace period
  // and for the kernel's mount lock, which CRIU holds while it tidies up right
  // after a restore (a request waited 1-4 ms for it while its answer was ready).
  void detach_host_view(WorkQueue* later = nullptr);

 private:
  // Shared with a detach queued on a WorkQueue, which may run after the
  // ScratchMount is gone (and then finds nothing left to do).
  struct HostView {
    std::mutex mutex;
    std::string dir;
    bool attached = true;
    int detach();  // 0 or errno
  };
  std::string dir_;
  std::shared_ptr<HostView> view_;
};

}  // namespace thaw::sandbox
