// Raising the open-file limit: a server or load generator holding thousands of connections needs
// more descriptors than the usual soft limit of 1024; the hard limit is what the system allows.
#pragma once
#include <sys/resource.h>

#include <cstdint>

namespace iol {

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
inline int64_t raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return static_cast<int64_t>(limit.rlim_cur);
}

}  // namespace iol
