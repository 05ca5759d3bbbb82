# Third-party libraries, all from Debian/Ubuntu -dev packages (scripts/deps.sh installs them).
# fmt is used header-only and GoogleTest statically so that binaries built on Debian 12 carry
# no shared-library version that differs on Ubuntu 24.04 (checked with ldd in tests/integration).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
# Boost.Asio/Beast (header-only in 1.74) for the HTTP server and the HTTP load generator.
find_package(Boost 1.74 REQUIRED)
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

# PCRE2 (tokenizer pre-tokenizer regexes with Unicode classes) and utf8proc (NFC normalization),
# both from their static archives so the binary carries no distro-specific soname.
find_library(PCRE2_STATIC_LIBRARY NAMES libpcre2-8.a REQUIRED)
find_path(UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)
find_library(UTF8PROC_STATIC_LIBRARY NAMES libutf8proc.a REQUIRED)
add_library(iol_unicode INTERFACE)
target_include_directories(iol_unicode INTERFACE ${PCRE2_INCLUDE_DIRS} ${UTF8PROC_INCLUDE_DIR})
target_compile_definitions(iol_unicode INTERFACE PCRE2_CODE_UNIT_WIDTH=8 UTF8PROC_STATIC)
target_link_libraries(iol_unicode INTERFACE ${PCRE2_STATIC_LIBRARY} ${UTF8PROC_STATIC_LIBRARY})
