// Text from instances made safe for JSON: invalid UTF-8 replaced, bounds kept
// at character boundaries, dumps that never throw, fields read without throwing.
#include "invoker/protocol/json_text.hpp"

#include <gtest/gtest.h>

using namespace thaw::invoker;

TEST(JsonText, BytesThatAreNotUtf8AreReplacedAndValidOnesKept) {
  const std::string replacement = "\xef\xbf\xbd";
  EXPECT_EQ(valid_utf8("plain"), "plain");
  EXPECT_EQ(valid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(valid_utf8("a\xff"
                       "b"),
            "a" + replacement + "b");
  EXPECT_EQ(valid_utf8("\xc0\xaf"), replacement + replacement);                    // overlong '/'
  EXPECT_EQ(valid_utf8("\xed\xa0\x80"), replacement + replacement + replacement);  // surrogate
  EXPECT_EQ(valid_utf8("\xe2\x82"), replacement + replacement);                    // cut short
  EXPECT_EQ(valid_utf8("\xf4\x90\x80\x80").find('\xf4'), std::string::npos);       // past U+10FFFF
}

TEST(JsonText, ABoundCutsAtACharacterBoundary) {
  EXPECT_EQ(bounded_utf8("ab\xc3\xa9", 3), "ab");
  EXPECT_EQ(bounded_utf8("ab\xc3\xa9", 4), "ab\xc3\xa9");
  EXPECT_EQ(bounded_utf8(std::string(100, 'x'), 10).size(), 10u);
}

TEST(JsonText, DumpingBytesThatAreNotUtf8DoesNotThrow) {
  const nlohmann::json j = {{"message", std::string("\xff\xfe")}};
  EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);
  std::string text;
  EXPECT_NO_THROW(text = json_text(j));
  EXPECT_EQ(nlohmann::json::parse(text)["message"], "\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(JsonText, AFieldOfAnotherTypeGivesTheFallback) {
  const auto j = nlohmann::json::parse(R"({"errorType": 5, "errorMessage": "m", "o": {}})");
  EXPECT_EQ(string_field(j, "errorType", "Unhandled"), "Unhandled");
  EXPECT_EQ(string_field(j, "errorMessage"), "m");
  EXPECT_EQ(string_field(j, "missing", "f"), "f");
  EXPECT_EQ(string_field(nlohmann::json::array(), "errorType", "f"), "f");
}

TEST(JsonText, IsUtf8AcceptsWellFormedTextOnly) {
  EXPECT_TRUE(is_utf8(""));
  EXPECT_TRUE(is_utf8("plain \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xff"})
    EXPECT_FALSE(is_utf8(bad)) << bad;
}
