#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "snapshots/criu.hpp"

using thaw::snapshots::version_at_least;

TEST(CriuVersion, Compare) {
  EXPECT_TRUE(version_at_least("4.2", "4.2"));
  EXPECT_TRUE(version_at_least("4.2.1", "4.2"));
  EXPECT_TRUE(version_at_least("4.10", "4.2"));
  EXPECT_TRUE(version_at_least("5.0", "4.2"));
  EXPECT_FALSE(version_at_least("4.1.1", "4.2"));
  EXPECT_FALSE(version_at_least("3.17.1", "4.2"));
  EXPECT_FALSE(version_at_least("", "4.2"));
}

namespace {

// The number after `#define NAME` in the criu patch whose name starts with
// `prefix`, or -1.
long patch_define(const std::string& prefix, const std::string& name) {
  const std::filesystem::path dir = std::string(THAW_SOURCE_DIR) + "/scripts/criu-patches";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(prefix, 0) != 0) continue;
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);) {
      const std::string define = "+#define " + name + " ";
      if (line.rfind(define, 0) == 0) return std::stol(line.substr(define.size()));
    }
  }
  return -1;
}

}  // namespace

// thawd and the spare criu must agree on what one options message may carry.
TEST(CriuSpareProtocol, ThawdsLimitsAreThePatchs) {
  EXPECT_EQ(patch_define("0012-", "THAW_MAX_PASSED_FDS"),
            static_cast<long>(thaw::snapshots::kSpareMaxPassedFds));
  EXPECT_EQ(patch_define("0012-", "THAW_MAX_OPTIONS_BYTES"),
            static_cast<long>(thaw::snapshots::kSpareMaxOptionsBytes));
}
