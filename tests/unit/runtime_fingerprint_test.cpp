// A snapshot holds its runtime's bootstrap in memory: a thawd whose runtime
// files changed (thaw upgraded at the same version) must not restore it, so
// the files' fingerprint is part of the snapshot's digest.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "invoker/instances/instance_snapshots.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace thaw::invoker;

namespace {

const std::string kPython = std::string(THAW_SOURCE_DIR) + "/images/runtimes/python3.11";

FunctionConfig python_config() {
  FunctionConfig c;
  c.name = "f";
  c.runtime = "python3.11";
  c.handler = "handler.handler";
  return c;
}

}  // namespace

TEST(RuntimeFingerprint, SameFilesSameFingerprintAnyChangeAnother) {
  const auto original = runtime_fingerprint(kPython);
  ASSERT_EQ(original.size(), 64u);
  thaw::test::TempDir dir;
  const fs::path copy = fs::path(dir.path()) / "python3.11";
  fs::copy(kPython, copy, fs::copy_options::recursive);
  EXPECT_EQ(runtime_fingerprint(copy.string()), original);

  std::ofstream(copy / "bootstrap.py", std::ios::app) << "\n# changed\n";
  const auto changed = runtime_fingerprint(copy.string());
  EXPECT_NE(changed, original);
  fs::rename(copy / "thaw.py", copy / "thaw2.py");
  EXPECT_NE(runtime_fingerprint(copy.string()), changed) << "a renamed file must count";
  EXPECT_EQ(runtime_fingerprint((copy / "missing").string()), "");
}

TEST(RuntimeFingerprint, TheDigestFollowsTheFingerprintTheHostHas) {
  const auto c = python_config();
  HostEnvironment host;
  host.runtime_fingerprints["python3.11"] = runtime_fingerprint(kPython);
  EXPECT_EQ(fingerprint_of(host, "python3.11"), host.runtime_fingerprints["python3.11"]);
  EXPECT_EQ(fingerprint_of(host, "provided"), "");
  const auto before = function_digest(c, "code", fingerprint_of(host, c.runtime));
  host.runtime_fingerprints["python3.11"] = std::string(64, '0');
  EXPECT_NE(function_digest(c, "code", fingerprint_of(host, c.runtime)), before);
  EXPECT_EQ(function_digest(c, "code", std::string(64, '0')),
            function_digest(c, "code", fingerprint_of(host, c.runtime)));
}
