// The bootstraps speak the frame protocol in Python and JavaScript: each
// must name every message type thawd's header defines, quoted as a string.

#include "invoker/protocol/frame_messages.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <set>
#include <string>

namespace {

std::string source_of(const std::string& relative) {
  std::ifstream in(std::string(THAW_SOURCE_DIR) + "/" + relative);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void expect_every_message_named(const std::string& relative) {
  const auto text = source_of(relative);
  ASSERT_FALSE(text.empty()) << relative << " is missing or empty";
  for (const auto message : thaw::invoker::frames::kAll) {
    const std::string name(message);
    const bool quoted = text.find('"' + name + '"') != std::string::npos ||
                        text.find('\'' + name + '\'') != std::string::npos;
    EXPECT_TRUE(quoted) << relative << " never names the frame type " << name;
  }
}

}  // namespace

TEST(FrameMessages, EveryTypeIsDistinct) {
  const auto& all = thaw::invoker::frames::kAll;
  EXPECT_EQ(std::set<std::string_view>(all.begin(), all.end()).size(), all.size());
}

TEST(FrameMessages, ThePythonBootstrapNamesEveryType) {
  expect_every_message_named("images/runtimes/python3.11/bootstrap.py");
}

TEST(FrameMessages, TheNodeBootstrapNamesEveryType) {
  expect_every_message_named("images/runtimes/nodejs20.x/bootstrap.js");
}
