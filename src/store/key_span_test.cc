#include "store/key_span.h"

#include <gtest/gtest.h>

namespace plinth::store {
namespace {

TEST(PrefixEnd, IncrementsTheLastByteThatIsNotFF) {
  EXPECT_EQ(PrefixEnd("abc"), "abd");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(std::string("a\xfe\xff\xff", 4)), std::string("a\xff", 2));
}

TEST(PrefixEnd, AllFFOrEmptyIsUnbounded) {
  EXPECT_EQ(PrefixEnd(""), "");
  EXPECT_EQ(PrefixEnd(std::string("\xff\xff", 2)), "");
}

TEST(KeySpan, PrefixContainsExactlyTheKeysWithThatPrefix) {
  KeySpan s = KeySpan::Prefix("ds/");
  EXPECT_TRUE(s.Contains("ds/"));
  EXPECT_TRUE(s.Contains(std::string("ds/\xff\xff", 5)));
  EXPECT_FALSE(s.Contains("ds0"));
  EXPECT_FALSE(s.Contains("dr/"));
  KeySpan ff = KeySpan::Prefix(std::string("\xff", 1));
  EXPECT_TRUE(ff.Contains(std::string("\xff\xff\xff", 3)));
  EXPECT_FALSE(ff.Contains(std::string("\xfe\xff", 2)));
}

TEST(KeySpan, KeyHoldsOneKeyIncludingNulBytes) {
  KeySpan s = KeySpan::Key(std::string("a\0b", 3));
  EXPECT_TRUE(s.Contains(std::string("a\0b", 3)));
  EXPECT_FALSE(s.Contains(std::string("a\0b\0", 4)));
  EXPECT_FALSE(s.Contains(std::string("a\0", 2)));
}

TEST(KeySpan, EmptyWhenEndNotAfterStart) {
  EXPECT_TRUE(KeySpan::Between("b", "a").empty());
  EXPECT_TRUE(KeySpan::Between("b", "b").empty());
  EXPECT_FALSE(KeySpan::Between("b", "").empty());
}

TEST(CompareKeys, IsUnsignedBytewise) {
  EXPECT_LT(CompareKeys("a", std::string("\x80", 1)), 0);
  EXPECT_LT(CompareKeys("a", "ab"), 0);
  EXPECT_EQ(CompareKeys(std::string("\0", 1), std::string("\0", 1)), 0);
  // std::string's own ordering agrees (char_traits<char> compares as unsigned char).
  EXPECT_LT(std::string("a"), std::string("\x80"));
}

TEST(PrintableKey, EscapesUnprintableBytes) {
  EXPECT_EQ(PrintableKey(std::string("a\0\xff", 3)), "\"a\\x00\\xff\"");
}

}  // namespace
}  // namespace plinth::store
