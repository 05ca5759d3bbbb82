# Third-party libraries, all from Debian/Ubuntu -dev packages (scripts/deps.sh installs them).
# fmt is used header-only and GoogleTest statically so that binaries built on Debian 12 carry
# no shared-library version that differs on Ubuntu 24.04 (checked with ldd in tests/integration).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)

add_library(iol_fmt INTERFACE)
target_link_libraries(iol_fmt INTERFACE fmt::fmt-header-only)

# yaml-cpp for bench/scenarios/*.yaml, linked from its static archive (its soname differs
# between Debian 12 and Ubuntu 24.04).
find_path(YAML_CPP_INCLUDE_DIR yaml-cpp/yaml.h REQUIRED)
find_library(YAML_CPP_STATIC_LIBRARY NAMES libyaml-cpp.a REQUIRED)
add_library(iol_yaml INTERFACE)
target_include_directories(iol_yaml INTERFACE ${YAML_CPP_INCLUDE_DIR})
target_link_libraries(iol_yaml INTERFACE ${YAML_CPP_STATIC_LIBRARY})
