#pragma once
// What `thawd --version` and `thaw --version` report about this host.

#include <string>

namespace thaw::invoker {

struct SystemFacts {
  std::string thaw_version;
  std::string criu_path;
  std::string criu_version;  // empty when not found
  bool criu_check_passed = false;
  std::string criu_problem;   // why criu is not there or fails its check
  std::string cgroup_layout;  // "v1", "v2" or "hybrid"
  std::string kernel_release;
  // Transparent huge pages: the mode, and the folio sizes enabled for anonymous
  // memory. Restored heaps come back in huge pages only when the mode is not
  // "never" (see README).
  std::string huge_pages;
};

// `criu`: the binary thawd was told to use; empty: the first one found.
SystemFacts gather_system_facts(const std::string& criu = "");
std::string format_version_report(const std::string& program, const SystemFacts& facts);

}  // namespace thaw::invoker
