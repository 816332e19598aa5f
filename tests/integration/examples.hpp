#pragma once
// Where the example functions of images/examples live, for tests.

#include <string>

namespace thaw::itest {

inline std::string example(const std::string& name) {
  return std::string(THAW_SOURCE_DIR) + "/images/examples/" + name;
}

}  // namespace thaw::itest
