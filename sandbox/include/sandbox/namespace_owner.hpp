#pragma once
// Acting as the owner of a function's user namespaces.
//
// The kernel charges per-user counters (inotify instances and watches, user
// namespaces, message queue bytes, pending signals, locked memory) at every
// level of user namespaces, up to the initial one, where it charges them to
// the uid that owns the top namespace: the effective uid of whoever created
// it. Namespaces made by root would put every function's counters on root's.
// So each function's namespaces are made by thawd acting with the function's
// own host uid as effective uid, and CRIU, which must act on those
// namespaces as their owner (root here lacks CAP_SYS_RESOURCE, which it would
// need in a namespace it does not own), runs the same way.
//
// Only the calling thread changes: Linux keeps credentials per thread, and
// these use the raw system calls (glibc's would change every thread of
// thawd). The real and saved uids stay 0, so root's capabilities come back
// when the scope ends.

#include <sys/types.h>

namespace thaw::sandbox {

class ActingAsOwner {
 public:
  enum class Exec {
    // Nothing is executed meanwhile (root's capabilities stay effective).
    No,
    // A program executed meanwhile (criu) runs with this effective uid and
    // root's capabilities, made ambient for the exec (and kept effective
    // meanwhile).
    KeepCapabilities,
  };

  // owner 0 does nothing (root acts as itself). Throws Error.
  ActingAsOwner(uid_t owner, gid_t group, Exec exec = Exec::No);
  ~ActingAsOwner();
  ActingAsOwner(const ActingAsOwner&) = delete;
  ActingAsOwner& operator=(const ActingAsOwner&) = delete;

 private:
  void restore() noexcept;
  bool active_ = false;
  bool ambient_ = false;
  int old_securebits_ = -1;
  uid_t old_uids_[3] = {0, 0, 0};  // real, effective, saved
  gid_t old_gids_[3] = {0, 0, 0};
};

}  // namespace thaw::sandbox
