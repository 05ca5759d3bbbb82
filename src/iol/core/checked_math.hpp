// Overflow-checked size arithmetic for values derived from user input (KV bytes, block counts,
// buffer sizes): a product or sum that does not fit int64 is an iol::Error naming what was being
// computed, never a wrapped value (a wrapped size became a zero divisor or a short allocation).
#pragma once
#include <cstdint>
#include <initializer_list>

#include "iol/core/error.hpp"

namespace iol {

// a × b × … of non-negative factors; throws naming `what` when the product exceeds int64.
inline int64_t checked_product(std::initializer_list<int64_t> factors, const char* what) {
  int64_t product = 1;
  for (int64_t f : factors) {
    if (f < 0) fail("{}: negative factor {}", what, f);
    if (__builtin_mul_overflow(product, f, &product)) fail("{}: the size overflows 64-bit integers (input too large)", what);
  }
  return product;
}

inline int64_t checked_sum(std::initializer_list<int64_t> terms, const char* what) {
  int64_t sum = 0;
  for (int64_t t : terms)
    if (__builtin_add_overflow(sum, t, &sum)) fail("{}: the size overflows 64-bit integers (input too large)", what);
  return sum;
}

// ceil(a / b) for a >= 0, b > 0, without the a + b - 1 that overflows near INT64_MAX.
inline int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

}  // namespace iol
