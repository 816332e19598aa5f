// Code packages (zip and tar.gz) unpacked into a store: anything may be
// refused, with thaw::Error, but nothing may land outside the store.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "images/code_package.hpp"
#include "thaw/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never destroyed, so the exit handler that removes it can still read it.
  static const std::string& root = *[] {
    // $TMPDIR when set: on a tmpfs, the store's fsyncs cost nothing and a
    // run spends its time unpacking, not waiting for the disk.
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/thaw-fuzz-code-XXXXXX";
    static const auto* dir = new std::string(mkdtemp(tmpl.data()));
    std::atexit([] { std::filesystem::remove_all(*dir); });
    return dir;
  }();
  thaw::images::CodeStore store(root + "/store");
  thaw::images::PackageLimits limits;
  limits.max_unpacked_bytes = 8 << 20;  // keeps each run fast
  limits.max_entries = 512;
  try {
    const auto pkg =
        store.add_archive(std::string_view(reinterpret_cast<const char*>(data), size), limits);
    store.remove(pkg.sha256);
  } catch (const thaw::Error&) {
  }
  // Nothing but the store (and its bookkeeping) under the root.
  for (const auto& e : std::filesystem::directory_iterator(root))
    if (e.path().filename() != "store") __builtin_trap();
  return 0;
}
