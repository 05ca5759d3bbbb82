// The machine's physical memory, for refusing host allocations that cannot succeed before making
// them (a clear error instead of std::bad_alloc or the OOM killer).
#pragma once
#include <unistd.h>

#include <cstdint>

namespace iol {

inline int64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<int64_t>(pages) * page_size : 0;  // 0: unknown
}

}  // namespace iol
