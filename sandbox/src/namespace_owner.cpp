// Switching the calling thread's effective ids, and root's capabilities made
// ambient for an exec meanwhile.
#include "sandbox/namespace_owner.hpp"

#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

struct Capabilities {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
};

Capabilities thread_capabilities() {
  Capabilities c;
  if (syscall(SYS_capget, &c.header, c.data) != 0) throw_errno("capget");
  return c;
}

void set_inheritable_to_permitted(bool on) {
  auto c = thread_capabilities();
  for (auto& d : c.data) d.inheritable = on ? d.permitted : 0;
  if (syscall(SYS_capset, &c.header, c.data) != 0) throw_errno("capset (inheritable)");
}

}  // namespace

ActingAsOwner::ActingAsOwner(uid_t owner, gid_t group, Exec exec) {
  if (owner == 0) return;
  try {
    if (syscall(SYS_getresuid, &old_uids_[0], &old_uids_[1], &old_uids_[2]) != 0 ||
        syscall(SYS_getresgid, &old_gids_[0], &old_gids_[1], &old_gids_[2]) != 0)
      throw_errno("getresuid");
    // Root's capabilities stay effective across the uid change: a namespace
    // made meanwhile is made with them (where unprivileged user namespaces
    // are off, an uncapable clone would fail), and an exec meanwhile may
    // reach a binary in a directory only root may enter.
    old_securebits_ = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
    if (old_securebits_ < 0) throw_errno("prctl(PR_GET_SECUREBITS)");
    if (prctl(PR_SET_SECUREBITS, old_securebits_ | SECBIT_NO_SETUID_FIXUP, 0, 0, 0) != 0)
      throw_errno("prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP)");
    if (exec == Exec::KeepCapabilities) {
      // An exec by a non-zero effective uid keeps only the ambient set as
      // effective, and a capability must be permitted and inheritable to
      // become ambient. (CAP_SYS_RESOURCE, which root lacks here, stays out:
      // in the owner's namespaces the owner has it anyway.) The securebit
      // is inherited: criu, which runs as root, sets the securebits of what
      // it restores from the images.
      ambient_ = true;
      set_inheritable_to_permitted(true);
      const auto c = thread_capabilities();
      for (unsigned cap = 0; cap < 32 * _LINUX_CAPABILITY_U32S_3; ++cap) {
        if (!(c.data[cap / 32].permitted & (1u << (cap % 32)))) continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
          throw_errno("prctl(PR_CAP_AMBIENT_RAISE, " + std::to_string(cap) + ")");
      }
    }
    active_ = true;
    if (syscall(SYS_setresgid, -1, group, -1) != 0)
      throw_errno("setresgid(-1, " + std::to_string(group) + ", -1)");
    if (syscall(SYS_setresuid, -1, owner, -1) != 0)
      throw_errno("setresuid(-1, " + std::to_string(owner) + ", -1)");
  } catch (const Error& e) {
    restore();
    throw e.with_context("acting as namespace owner " + std::to_string(owner));
  } catch (...) {
    restore();
    throw;
  }
}

ActingAsOwner::~ActingAsOwner() {
  restore();
}

void ActingAsOwner::restore() noexcept {
  if (active_) {
    // The real and saved uids were never changed, so going back is allowed.
    syscall(SYS_setresuid, -1, old_uids_[1], -1);
    syscall(SYS_setresgid, -1, old_gids_[1], -1);
    // The kernel made thawd's memory undumpable when the effective uid
    // changed, its rule for set-id programs, which thawd is not. (The flag
    // is the whole process's: for that moment all of thawd was undumpable.)
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    active_ = false;
  }
  if (ambient_) {
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    try {
      set_inheritable_to_permitted(false);
    } catch (const Error&) {
      // Lowering a set cannot fail for want of privilege; nothing to undo.
    }
    ambient_ = false;
  }
  if (old_securebits_ >= 0) {
    prctl(PR_SET_SECUREBITS, old_securebits_, 0, 0, 0);
    old_securebits_ = -1;
  }
}

}  // namespace thaw::sandbox
