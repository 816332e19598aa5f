#include <gtest/gtest.h>

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
