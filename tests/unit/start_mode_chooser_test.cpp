#include "invoker/invocation/start_mode_chooser.hpp"

#include <gtest/gtest.h>

using thaw::invoker::StartModeChooser;

TEST(StartModeChooser, RestoresUntilBothWaysAreKnown) {
  StartModeChooser c;
  EXPECT_TRUE(c.prefer_restore("f"));
  c.record("f", false, 70);
  EXPECT_TRUE(c.prefer_restore("f"));
  c.record("f", true, 90);  // one slow restore is not enough to judge
  EXPECT_TRUE(c.prefer_restore("f"));
}

TEST(StartModeChooser, KeepsRestoringWhenRestoresAreFaster) {
  StartModeChooser c;
  c.record("pandas", false, 450);
  for (int i = 0; i < 5; ++i) c.record("pandas", true, 150);
  for (int i = 0; i < 30; ++i) EXPECT_TRUE(c.prefer_restore("pandas"));
}

TEST(StartModeChooser, StartsColdWhenRestoresAreSlowerAndRechecksNowAndThen) {
  StartModeChooser c;
  c.record("node", false, 70);
  c.record("node", true, 85);
  c.record("node", true, 88);
  int restores = 0;
  for (uint64_t i = 0; i < 3 * StartModeChooser::kRecheckEvery; ++i)
    restores += c.prefer_restore("node") ? 1 : 0;
  EXPECT_EQ(restores, 3);
  // Functions are judged apart.
  EXPECT_TRUE(c.prefer_restore("other"));
}

TEST(StartModeChooser, ChangesItsMindWhenRestoresGetFaster) {
  StartModeChooser c;
  c.record("f", false, 70);
  c.record("f", true, 90);
  c.record("f", true, 90);
  EXPECT_FALSE(c.prefer_restore("f"));
  for (int i = 0; i < 8; ++i) c.record("f", true, 50);
  EXPECT_TRUE(c.prefer_restore("f"));
}
