// Compiling seccomp profiles to BPF with libseccomp, and caching the result.
#include <linux/sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>

#include "sandbox/seccomp.hpp"
#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::sandbox {

namespace {

constexpr uint64_t kNamespaceCloneFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                          CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                                          CLONE_NEWCGROUP | CLONE_NEWTIME;

struct Context {
  scmp_filter_ctx ctx;
  explicit Context(uint32_t def) : ctx(seccomp_init(def)) {
    if (!ctx) throw Error("seccomp: seccomp_init failed");
  }
  ~Context() { seccomp_release(ctx); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
};

void check(int rc, const std::string& what) {
  if (rc < 0) throw_errno("seccomp: " + what, -rc);
}

// libseccomp's SCMP_A0()... macros are C compound literals: the same
// comparison, in C++.
scmp_arg_cmp arg_cmp(unsigned arg, scmp_compare op, uint64_t a, uint64_t b = 0) {
  return scmp_arg_cmp{arg, op, a, b};
}

// The kernel reads rlimit resources as ints: refusals compare only the low
// 32 bits.
constexpr uint64_t kInt = 0xffffffffu;

bool contains(const std::vector<int>& values, int v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

// socket(family, type, protocol) and socketpair(...). Values are compared
// on all 64 bits: high bits set by hand (which the kernel drops, reading an
// int) never pass as an allowed family, and land above the range of
// families the kernel knows, which is refused as a whole. A catch-all
// refusal is no option: libseccomp lets it override the conditional rules.
void add_socket_rules(scmp_filter_ctx ctx, const SeccompProfile& profile, const char* call) {
  const int nr = seccomp_syscall_resolve_name(call);
  const std::string what(call);
  const int highest =
      *std::max_element(profile.socket_families.begin(), profile.socket_families.end());
  const auto refuse_family = SCMP_ACT_ERRNO(EAFNOSUPPORT);
  check(seccomp_rule_add(ctx, refuse_family, nr, 1,
                         arg_cmp(0, SCMP_CMP_GT, static_cast<uint64_t>(highest))),
        "refuse " + what + " above the families allowed");
  for (int family = 0; family < highest; ++family)
    if (!contains(profile.socket_families, family))
      check(seccomp_rule_add(ctx, refuse_family, nr, 1,
                             arg_cmp(0, SCMP_CMP_EQ, static_cast<uint64_t>(family))),
            "refuse " + what + " of a family");
  for (int family : profile.socket_families) {
    const auto arg0 = arg_cmp(0, SCMP_CMP_EQ, static_cast<uint64_t>(family));
    if (family != AF_NETLINK) {
      check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, arg0), "allow " + what + " of a family");
      continue;
    }
    for (int protocol : profile.netlink_protocols)
      check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2, arg0,
                             arg_cmp(2, SCMP_CMP_EQ, static_cast<uint64_t>(protocol))),
            "allow " + what + " of a netlink protocol");
    // Refused as above: the protocols the kernel knows (MAX_LINKS), and past them.
    const auto refuse_protocol = SCMP_ACT_ERRNO(EPROTONOSUPPORT);
    check(seccomp_rule_add(ctx, refuse_protocol, nr, 2, arg0, arg_cmp(2, SCMP_CMP_GT, 31)),
          "refuse " + what + " past the netlink protocols");
    for (int protocol = 0; protocol < 32; ++protocol)
      if (!contains(profile.netlink_protocols, protocol))
        check(seccomp_rule_add(ctx, refuse_protocol, nr, 2, arg0,
                               arg_cmp(2, SCMP_CMP_EQ, static_cast<uint64_t>(protocol))),
              "refuse " + what + " of a netlink protocol");
  }
}

// RLIMIT_CORE may be read but not set (lock_core_limit). One rule per
// resource the kernel knows, compared on the low 32 bits it reads, so high
// bits set by hand cannot pass RLIMIT_CORE off as another resource.
void add_core_limit_rules(scmp_filter_ctx ctx) {
  const int setrlimit_nr = seccomp_syscall_resolve_name("setrlimit");
  const int prlimit_nr = seccomp_syscall_resolve_name("prlimit64");
  for (int resource = 0; resource < RLIM_NLIMITS; ++resource) {
    const auto value = static_cast<uint64_t>(resource);
    if (resource != RLIMIT_CORE) {
      check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, setrlimit_nr, 1,
                             arg_cmp(0, SCMP_CMP_MASKED_EQ, kInt, value)),
            "allow setrlimit");
      check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, prlimit_nr, 1,
                             arg_cmp(1, SCMP_CMP_MASKED_EQ, kInt, value)),
            "allow prlimit64");
      continue;
    }
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), setrlimit_nr, 1,
                           arg_cmp(0, SCMP_CMP_MASKED_EQ, kInt, value)),
          "refuse setrlimit(RLIMIT_CORE)");
    // Reading it (no new limit) is fine: Python and Node.js do at start-up.
    check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, prlimit_nr, 2,
                           arg_cmp(1, SCMP_CMP_MASKED_EQ, kInt, value), arg_cmp(2, SCMP_CMP_EQ, 0)),
          "allow prlimit64 reading RLIMIT_CORE");
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), prlimit_nr, 2,
                           arg_cmp(1, SCMP_CMP_MASKED_EQ, kInt, value), arg_cmp(2, SCMP_CMP_NE, 0)),
          "refuse prlimit64 setting RLIMIT_CORE");
  }
}

int resolve(const std::string& name) {
  // Names the running libseccomp does not know (or that do not exist on
  // x86_64) are skipped: there is nothing to allow or refuse.
  return seccomp_syscall_resolve_name(name.c_str());
}

}  // namespace

std::string SeccompProfile::fingerprint() const {
  std::ostringstream out;
  out << name << '|' << default_errno << '|' << filter_clone_namespace_flags << '|'
      << refuse_tiocsti << '|' << lock_core_limit << "|personality:";
  for (uint32_t v : personality_values) out << v << ',';
  out << "|families:";
  for (int f : socket_families) out << f << ',';
  out << "|netlink:";
  for (int p : netlink_protocols) out << p << ',';
  out << "|allow:";
  for (const auto& s : allow) out << s << ',';
  out << "|refuse:";
  for (const auto& s : refuse) out << s << ',';
  return out.str();
}

std::shared_ptr<const CompiledFilter> compile(const SeccompProfile& profile) {
  Context c(SCMP_ACT_ERRNO(static_cast<uint32_t>(profile.default_errno)));
  // Only the native ABI: an i386 (int 0x80) or x32 system call is refused
  // instead of reaching a table the profile never looked at.
  check(seccomp_attr_set(c.ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad-arch action");
  // A binary search over the system call numbers instead of one comparison
  // after another: the kernel runs the filter for every number when it is
  // attached (to cache which are always allowed), so a ~330-call allowlist
  // attached in 300-340 us as a chain and 120-130 us as a tree (probe on
  // this machine), at every cold start and every restore.
  check(seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2), "binary-tree optimization");

  const bool filter_sockets = !profile.socket_families.empty();
  for (const auto& name : profile.allow) {
    const int nr = resolve(name);
    if (nr == __NR_SCMP_ERROR) continue;
    if (filter_sockets && (name == "socket" || name == "socketpair")) {
      add_socket_rules(c.ctx, profile, name.c_str());
      continue;
    }
    if (profile.lock_core_limit && name == "prlimit64") continue;
    if (profile.lock_core_limit && name == "setrlimit") {
      add_core_limit_rules(c.ctx);
      continue;
    }
    if (!profile.personality_values.empty() && name == "personality") {
      for (uint32_t v : profile.personality_values)
        check(
            seccomp_rule_add(c.ctx, SCMP_ACT_ALLOW, nr, 1, arg_cmp(0, SCMP_CMP_MASKED_EQ, kInt, v)),
            "allow personality(" + std::to_string(v) + ")");
      // Other values meet the profile's default errno: libseccomp cannot say
      // "none of these" in one rule, and an unconditional rule beside the
      // ones above would replace them.
      continue;
    }
    if (profile.refuse_tiocsti && name == "ioctl") {
      // The kernel reads the request as 32 bits: compare only those.
      check(seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
                             arg_cmp(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI)),
            "refuse ioctl(TIOCSTI)");
      check(seccomp_rule_add(c.ctx, SCMP_ACT_ALLOW, nr, 1, arg_cmp(1, SCMP_CMP_NE, TIOCSTI)),
            "allow ioctl");
      continue;
    }
    check(seccomp_rule_add(c.ctx, SCMP_ACT_ALLOW, nr, 0), "allow " + name);
  }
  for (const auto& name : profile.refuse) {
    const int nr = resolve(name);
    if (nr == __NR_SCMP_ERROR) continue;
    check(seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EPERM), nr, 0), "refuse " + name);
  }
  if (profile.filter_clone_namespace_flags) {
    const int clone_nr = resolve("clone");
    check(seccomp_rule_add(c.ctx, SCMP_ACT_ALLOW, clone_nr, 1,
                           arg_cmp(0, SCMP_CMP_MASKED_EQ, kNamespaceCloneFlags, 0)),
          "allow clone without namespace flags");
    // Any one namespace flag is enough to refuse the call.
    for (uint64_t bit = 1; bit != 0; bit <<= 1) {
      if (!(kNamespaceCloneFlags & bit)) continue;
      check(seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EPERM), clone_nr, 1,
                             arg_cmp(0, SCMP_CMP_MASKED_EQ, bit, bit)),
            "refuse clone with a namespace flag");
    }
  }

  // libseccomp 2.5 can only export to a file descriptor: use a memfd.
  UniqueFd mem(memfd_create("thaw-seccomp", MFD_CLOEXEC));
  if (!mem) throw_errno("seccomp: memfd_create");
  check(seccomp_export_bpf(c.ctx, mem.get()), "export BPF");
  const off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0)
    throw Error("seccomp: exported program has a bad size");
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(mem.get(), program.data(), static_cast<size_t>(size), 0) != size)
    throw_errno("seccomp: read back BPF");
  return std::make_shared<const CompiledFilter>(std::move(program));
}

std::shared_ptr<const CompiledFilter> compiled(const SeccompProfile& profile) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const CompiledFilter>> cache;
  const auto key = profile.fingerprint();
  std::lock_guard lock(mutex);
  auto& slot = cache[key];
  if (!slot) slot = compile(profile);
  return slot;
}

}  // namespace thaw::sandbox
