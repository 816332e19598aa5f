#include "invoker/system_facts.hpp"

#include <sys/utsname.h>

#include "sandbox/cgroup.hpp"
#include "snapshots/criu.hpp"
#include "thaw/build_info.hpp"

namespace thaw::invoker {

SystemFacts gather_system_facts() {
  SystemFacts f;
  f.thaw_version = kVersion;
  const auto criu = snapshots::probe_criu();
  f.criu_path = criu.path;
  f.criu_version = criu.version;
  f.criu_check_passed = criu.check_passed;
  f.cgroup_layout = sandbox::mode_name(sandbox::detect_cgroup_layout().mode);
  utsname u{};
  if (uname(&u) == 0) f.kernel_release = u.release;
  return f;
}

std::string format_version_report(const std::string& program, const SystemFacts& f) {
  std::string out = program + " " + f.thaw_version + "\n";
  if (f.criu_path.empty()) {
    out += "criu: not found (snapshots off; run scripts/install-deps)\n";
  } else {
    out += "criu: " + f.criu_version + " at " + f.criu_path + ", criu check " +
           (f.criu_check_passed ? "passes" : "FAILS") + "\n";
  }
  out += "cgroups: " + f.cgroup_layout + "\n";
  out += "kernel: " + f.kernel_release + "\n";
  return out;
}

}  // namespace thaw::invoker
