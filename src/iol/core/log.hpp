// Warnings for the user on stderr, one line each ("iol: warning: ..."): for input that is accepted
// but probably not what was meant (e.g. checkpoint tensors the architecture does not use).
#pragma once
#include <cstdio>
#include <string_view>

#include <fmt/format.h>

namespace iol {

inline void warn(std::string_view message) { fmt::print(stderr, "iol: warning: {}\n", message); }

}  // namespace iol
