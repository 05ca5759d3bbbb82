#include <gtest/gtest.h>

#include "iol/engine/stop_checker.hpp"

namespace iol::engine {

TEST(StopChecker, FindsTheEarliestMatchTouchingNewText) {
  StopChecker checker({"END", "\n\n"});
  EXPECT_FALSE(checker.find_stop("hello", 5));
  EXPECT_EQ(checker.find_stop("helloEN", 2), std::nullopt);
  EXPECT_EQ(checker.find_stop("helloEND", 1), 5u);    // match straddling old and new text
  EXPECT_EQ(checker.find_stop("a\n\nbEND", 7), 1u);   // earliest wins
}

TEST(StopChecker, HoldsBackWhatCouldStartAStopString) {
  StopChecker checker({"STOP"});
  EXPECT_EQ(checker.streamable_prefix("abcdef"), 3u);
  EXPECT_EQ(checker.streamable_prefix("ab"), 0u);
  EXPECT_EQ(checker.streamable_prefix("ab\xC3\xA9xx"), 2u);  // never splits é
  EXPECT_EQ(StopChecker({}).streamable_prefix("abc"), 3u);
}

}  // namespace iol::engine
