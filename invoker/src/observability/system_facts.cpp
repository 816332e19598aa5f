#include "invoker/observability/system_facts.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "sandbox/cgroup.hpp"
#include "snapshots/criu.hpp"
#include "thaw/build_info.hpp"

namespace thaw::invoker {

namespace {

// "always [madvise] never" -> "madvise"
std::string selected(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  const auto open = line.find('['), close = line.find(']');
  return open == std::string::npos || close == std::string::npos
             ? ""
             : line.substr(open + 1, close - open - 1);
}

}  // namespace

SystemFacts gather_system_facts(const std::string& criu_path) {
  SystemFacts f;
  f.thaw_version = kVersion;
  const auto criu = snapshots::probe_criu(criu_path);
  f.criu_path = criu.path;
  f.criu_version = criu.version;
  f.criu_check_passed = criu.check_passed;
  f.criu_problem = criu.check_output;
  f.cgroup_layout = sandbox::mode_name(sandbox::detect_cgroup_layout().mode);
  utsname u{};
  if (uname(&u) == 0) f.kernel_release = u.release;
  const std::string thp = "/sys/kernel/mm/transparent_hugepage";
  f.huge_pages = selected(thp + "/enabled");
  std::vector<std::string> sizes;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(thp, ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind("hugepages-", 0) != 0) continue;
    const auto mode = selected(e.path().string() + "/enabled");
    if (mode == "always" || (mode == "inherit" && f.huge_pages == "always"))
      sizes.push_back(name.substr(10));
  }
  std::sort(sizes.begin(), sizes.end());
  std::string list;
  for (const auto& s : sizes) list += (list.empty() ? "" : ",") + s;
  f.huge_pages += "; anonymous folios always: " + (list.empty() ? std::string("none") : list);
  return f;
}

std::string format_version_report(const std::string& program, const SystemFacts& f) {
  std::string out = program + " " + f.thaw_version + "\n";
  if (f.criu_path.empty()) {
    // Not found where thawd looks, or not runnable where the operator said.
    out += "criu: " +
           (f.criu_problem.empty() ? std::string("not found (run scripts/install-deps)")
                                   : f.criu_problem) +
           "; snapshots off\n";
  } else {
    const bool new_enough = snapshots::version_at_least(f.criu_version, snapshots::kMinCriuVersion);
    out += "criu: " + (f.criu_version.empty() ? std::string("no version") : f.criu_version) +
           " at " + f.criu_path + ", criu check " + (f.criu_check_passed ? "passes" : "FAILS") +
           (new_enough ? "" : std::string(", ") + snapshots::kMinCriuVersion + " or newer needed") +
           (new_enough && f.criu_check_passed ? "" : "; snapshots off") + "\n";
  }
  out += "cgroups: " + f.cgroup_layout + "\n";
  out += "kernel: " + f.kernel_release + "\n";
  out += "transparent huge pages: " + f.huge_pages + "\n";
  return out;
}

}  // namespace thaw::invoker
