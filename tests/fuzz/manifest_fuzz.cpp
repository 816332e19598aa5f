// Snapshot manifests read back: anything may be refused with thaw::Error; what
// is accepted writes out and reads back the same.
#include <cstdint>
#include <string>

#include "snapshots/manifest.hpp"
#include "thaw/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto m =
        thaw::snapshots::manifest_from_json(std::string(reinterpret_cast<const char*>(data), size));
    const auto again = thaw::snapshots::manifest_from_json(thaw::snapshots::to_json(m));
    if (again.files != m.files || again.inherited != m.inherited) __builtin_trap();
  } catch (const thaw::Error&) {
  }
  return 0;
}
