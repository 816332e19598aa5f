#include "reachable.hpp"

#include "examples.hpp"
#include "snapshots/criu_environment.hpp"

namespace thaw::itest {

std::string expose_checkout() {
  static const std::string runtimes = [] {
    snapshots::prepare_criu_environment();
    examples_root() =
        snapshots::expose_directory(std::string(THAW_SOURCE_DIR) + "/images/examples", "examples");
    return snapshots::expose_directory(THAW_RUNTIMES_DIR, "runtimes");
  }();
  return runtimes;
}

}  // namespace thaw::itest
