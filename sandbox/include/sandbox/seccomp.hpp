#pragma once
// seccomp profiles: a profile is data (allowed and refused system calls); it is
// compiled to BPF once with libseccomp and cached by its content, so spawning
// an instance only hands the kernel a ready program.

#include <linux/filter.h>

#include <memory>
#include <string>
#include <vector>

namespace thaw::sandbox {

struct SeccompProfile {
  std::string name;
  // Allowed outright.
  std::vector<std::string> allow;
  // Refused with EPERM, so runtimes see a clean "Operation not permitted".
  std::vector<std::string> refuse;
  // Everything else returns this errno; ENOSYS lets libc fall back (clone3 -> clone).
  int default_errno = 38;  // ENOSYS
  // clone is allowed only without namespace-creating flags.
  bool filter_clone_namespace_flags = true;
  // ioctl(TIOCSTI) would let a process inject input into a terminal it shares.
  bool refuse_tiocsti = true;
  // socket() and socketpair() only for these address families; the others
  // get EAFNOSUPPORT, as from a kernel without them. Empty: any family.
  // AF_VSOCK is why: a network namespace does not confine it, and on a VM
  // host it reaches the hypervisor.
  std::vector<int> socket_families;
  // With AF_NETLINK among the families, only these netlink protocols; the
  // others (NETLINK_AUDIT, ...) get EPROTONOSUPPORT.
  std::vector<int> netlink_protocols;
  // setrlimit and prlimit64 may not set RLIMIT_CORE: the sandbox sets it so
  // that the kernel writes no core dump and runs no core_pattern helper
  // (sandbox/src/spawn.cpp says why 1), and the function may not undo that.
  bool lock_core_limit = false;
  // personality() only with these values (compared on the 32 bits the kernel
  // reads); others get default_errno. Empty: any. ADDR_NO_RANDOMIZE would turn
  // address randomization off for what the function runs next, and
  // READ_IMPLIES_EXEC make its readable memory executable.
  std::vector<uint32_t> personality_values;

  // A stable text of the profile; the cache key.
  std::string fingerprint() const;
};

// A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER).
class CompiledFilter {
 public:
  explicit CompiledFilter(std::vector<sock_filter> program) : program_(std::move(program)) {}
  // Points into this object; valid while it lives.
  sock_fprog fprog() const {
    return sock_fprog{static_cast<unsigned short>(program_.size()),
                      const_cast<sock_filter*>(program_.data())};
  }
  size_t instructions() const { return program_.size(); }

 private:
  std::vector<sock_filter> program_;
};

// The default profile, in the spirit of Docker's: what Python, Node.js and
// ordinary native programs use is allowed; what reaches into the kernel or
// other processes is refused with EPERM.
const SeccompProfile& default_profile();

// Compiles with libseccomp; foreign architectures (i386, x32) are refused.
std::shared_ptr<const CompiledFilter> compile(const SeccompProfile& profile);

// compile(), cached by the profile's fingerprint. Thread-safe.
std::shared_ptr<const CompiledFilter> compiled(const SeccompProfile& profile);

}  // namespace thaw::sandbox
