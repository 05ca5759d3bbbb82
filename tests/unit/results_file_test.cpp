// The boundary checks of issue 14 at unit level: the results appender (whole lines only, partial
// last lines refused or repaired), JSON depth limits, regular-file reads and checked size math.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "../support/temp_dir.hpp"
#include "iol/bench/results.hpp"
#include "iol/bench/results_file.hpp"
#include "iol/core/checked_math.hpp"
#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"

namespace iol {
namespace {

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(JsonlAppender, AppendsWholeLinesAndCreatesDirectories) {
  testing::TempDir dir;
  const std::string path = dir.str("a/b/r.jsonl");
  {
    bench::JsonlAppender out(path);
    out.append(nlohmann::json{{"run_id", "x"}});
    out.append(std::vector<nlohmann::json>{{{"i", 1}}, {{"i", 2}}});
  }
  EXPECT_EQ(bytes_of(path), "{\"run_id\":\"x\"}\n{\"i\":1}\n{\"i\":2}\n");
  EXPECT_EQ(bench::read_jsonl(path).size(), 3u);
}

TEST(JsonlAppender, RefusesAPartialLastLineAndLeavesTheFileAlone) {
  testing::TempDir dir;
  const std::string path = dir.str("r.jsonl");
  std::ofstream(path) << "{\"run_id\":\"a\"}\n{\"run_id\":\"b\",\"metr";
  const std::string before = bytes_of(path);
  const std::string error = error_of([&] { bench::JsonlAppender out(path); });
  EXPECT_NE(error.find(path + ": the last line (19 bytes from byte 15) is an incomplete record"), std::string::npos) << error;
  EXPECT_EQ(bytes_of(path), before);
  // read_jsonl names the line and why.
  EXPECT_EQ(error_of([&] { bench::read_jsonl(path); }),
            path + ":2: not a JSON object (an incomplete last line: an interrupted write?)");
}

TEST(JsonlAppender, RepairsALastRecordMissingOnlyItsNewline) {
  testing::TempDir dir;
  const std::string path = dir.str("r.jsonl");
  std::ofstream(path) << "{\"run_id\":\"a\"}";
  bench::JsonlAppender(path).append(nlohmann::json{{"run_id", "b"}});
  EXPECT_EQ(bytes_of(path), "{\"run_id\":\"a\"}\n{\"run_id\":\"b\"}\n");
}

TEST(JsonlAppender, RefusesNonResultsFilesAndNonRegularFiles) {
  testing::TempDir dir;
  std::ofstream(dir.str("notes.md")) << "# title\ntext\n";
  EXPECT_NE(error_of([&] { bench::JsonlAppender out(dir.str("notes.md")); }).find("is not a JSON-lines results file"),
            std::string::npos);
  EXPECT_EQ(bytes_of(dir.str("notes.md")), "# title\ntext\n");
  ASSERT_EQ(mkfifo(dir.str("fifo").c_str(), 0644), 0);
  EXPECT_NE(error_of([&] { bench::JsonlAppender out(dir.str("fifo")); }).find("fifo"), std::string::npos);
  EXPECT_NE(error_of([&] { bench::JsonlAppender out(dir.str()); }).find("cannot open for appending"), std::string::npos);
}

TEST(JsonlAppender, TracesPathReplacesOnlyTheExtension) {
  EXPECT_EQ(bench::traces_path_for("r/results.jsonl"), "r/results.requests.jsonl");
  EXPECT_EQ(bench::traces_path_for("a.jsonl.d/r"), "a.jsonl.d/r.requests.jsonl");
  EXPECT_EQ(bench::traces_path_for("runs.jsonl.bak"), "runs.jsonl.bak.requests.jsonl");
}

TEST(JsonFile, NestingIsBoundedOutsideStringsOnly) {
  EXPECT_EQ(error_of([] { check_json_depth(std::string(300, '[') + std::string(300, ']'), "x.json"); }),
            "x.json: nested deeper than 256 levels of [ ] or { }");
  EXPECT_EQ(error_of([] { check_json_depth("[\"" + std::string(1000, '[') + "\\\"\"]", "x.json"); }), "(no error)");
  EXPECT_EQ(error_of([] { check_json_depth(std::string(256, '{') , "x.json"); }), "(no error)");
  EXPECT_EQ(error_of([] { parse_json("{\"a\": 1", "k.json"); }).rfind("k.json: malformed JSON", 0), 0u);
}

TEST(JsonFile, OnlyRegularFilesAreRead) {
  testing::TempDir dir;
  ASSERT_EQ(mkfifo(dir.str("fifo").c_str(), 0644), 0);
  EXPECT_NE(error_of([&] { read_text_file(dir.str("fifo")); }).find("not a regular file"), std::string::npos);
  EXPECT_NE(error_of([&] { read_text_file(dir.str()); }).find("not a regular file"), std::string::npos);
  std::ofstream(dir.str("big")) << std::string(100, 'x');
  EXPECT_NE(error_of([&] { read_text_file(dir.str("big"), 10); }).find("100 bytes is larger than the 10 bytes"),
            std::string::npos);
}

TEST(CheckedMath, OverflowIsAnErrorNamingWhat) {
  EXPECT_EQ(checked_product({2, 3, 4}, "x"), 24);
  EXPECT_EQ(error_of([] { checked_product({int64_t{1} << 40, int64_t{1} << 30}, "KV bytes"); }),
            "KV bytes: the size overflows 64-bit integers (input too large)");
  EXPECT_THROW(checked_sum({INT64_MAX, 1}, "x"), Error);
  EXPECT_EQ(ceil_div(INT64_MAX, 16), INT64_MAX / 16 + 1);
  EXPECT_EQ(ceil_div(32, 16), 2);
}

}  // namespace
}  // namespace iol
