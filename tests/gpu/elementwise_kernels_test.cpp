// The small kernels of the CUDA backend (backend/cuda/kernels/elementwise.cuh) against plain C++
// references written here, on fresh random inputs at sizes that fill an H100, outputs poisoned with
// 0xFF (NaN in bf16) first, every element checked. Every comparison is written so that NaN fails it
// (bit equality with a finite reference, or `|got - ref| <= tol`). Each test states its tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/device_buffer.hpp"
#include "iol/backend/cuda/kernels/elementwise.cuh"
#include "iol/core/dtype.hpp"
#include "iol/core/rng.hpp"
#include "iol/quant/codec.hpp"

namespace iol::backend::cuda::kernels {
namespace {

constexpr uint16_t kPoison = 0xFFFF;  // fill_bytes(0xFF): a NaN in bf16

class TestStream {
 public:
  TestStream() { IOL_CUDA_CHECK(cudaStreamCreate(&stream_)); }
  ~TestStream() { cudaStreamDestroy(stream_); }
  TestStream(const TestStream&) = delete;
  TestStream& operator=(const TestStream&) = delete;
  operator cudaStream_t() const { return stream_; }
  // Waits for the launches and surfaces any asynchronous error they raised.
  void sync() const {
    IOL_CUDA_CHECK(cudaStreamSynchronize(stream_));
    IOL_CUDA_CHECK(cudaGetLastError());
  }

 private:
  cudaStream_t stream_ = nullptr;
};

template <typename T>
DeviceBuffer to_device(const std::vector<T>& host) {
  DeviceBuffer buffer(host.size() * sizeof(T));
  buffer.upload(host.data(), buffer.bytes());
  return buffer;
}

template <typename T>
std::vector<T> to_host(const DeviceBuffer& buffer) {
  std::vector<T> host(buffer.bytes() / sizeof(T));
  buffer.download(host.data(), host.size() * sizeof(T));
  return host;
}

DeviceBuffer poisoned(size_t bytes) {
  DeviceBuffer buffer(bytes);
  buffer.fill_bytes(0xFF);
  return buffer;
}

float f32(uint16_t bits) { return bf16_to_f32(bits); }
bf16* as_bf16(const DeviceBuffer& buffer) { return buffer.as<bf16>(); }

// Uniform in [lo, hi), rounded to bf16.
std::vector<uint16_t> random_bf16(Rng& rng, size_t n, double lo, double hi) {
  std::vector<uint16_t> values(n);
  for (auto& v : values) v = f32_to_bf16(static_cast<float>(lo + (hi - lo) * rng.uniform()));
  return values;
}

// The spacing of bf16 values at |x| (8 significant bits); subnormal spacing below FLT_MIN.
double bf16_ulp(double x) {
  x = std::fabs(x);
  if (x < FLT_MIN) return std::ldexp(1.0, -133);
  int exponent = 0;
  std::frexp(x, &exponent);  // x in [2^(exponent-1), 2^exponent)
  return std::ldexp(1.0, exponent - 8);
}

// Counts the elements that failed and keeps the first few for the assertion message.
class Mismatches {
 public:
  void add(const std::string& where, double got, double ref) {
    if (count_++ < 8) {
      std::ostringstream line;
      line.precision(9);
      line << "\n  " << where << ": got " << got << ", expected " << ref;
      first_ += line.str();
    }
  }
  size_t count() const { return count_; }
  const std::string& first() const { return first_; }

 private:
  size_t count_ = 0;
  std::string first_;
};

std::string at(const char* name, size_t row, size_t column) {
  return std::string(name) + "[" + std::to_string(row) + "][" + std::to_string(column) + "]";
}

// ---------------------------------------------------------------------------------------------
// embedding: a gather, so bit-exact.

void check_embedding(int vocab, int hidden, int num_tokens, uint64_t seed) {
  Rng rng(seed);
  // Random finite bf16 bit patterns, four per draw (a 1 GB table in well under a second): clearing
  // bit 14 keeps the exponent below 255, so no Inf/NaN can pass for a copied poison value.
  std::vector<uint16_t> table(size_t(vocab) * hidden);
  for (size_t i = 0; i < table.size(); i += 4) {
    uint64_t bits = rng.next_u64();
    for (size_t k = 0; k < 4 && i + k < table.size(); ++k, bits >>= 16)
      table[i + k] = static_cast<uint16_t>(bits & 0xBFFFu);
  }
  std::vector<int32_t> ids(num_tokens);
  for (auto& id : ids) id = static_cast<int32_t>(rng.next_u64() % vocab);
  ids[0] = 0;  // the first and last rows, and a repeated id
  if (num_tokens > 1) ids[1] = vocab - 1;
  if (num_tokens > 3) ids[3] = ids[2];

  TestStream stream;
  DeviceBuffer d_table = to_device(table), d_ids = to_device(ids);
  DeviceBuffer d_out = poisoned(size_t(num_tokens) * hidden * sizeof(uint16_t));
  embedding(as_bf16(d_table), d_ids.as<int32_t>(), num_tokens, hidden, as_bf16(d_out), stream);
  stream.sync();
  auto out = to_host<uint16_t>(d_out);

  Mismatches bad;
  for (int t = 0; t < num_tokens; ++t)
    for (int c = 0; c < hidden; ++c) {
      const uint16_t ref = table[size_t(ids[t]) * hidden + c], got = out[size_t(t) * hidden + c];
      if (got != ref) bad.add(at("out", t, c), f32(got), f32(ref));
    }
  EXPECT_EQ(bad.count(), 0u) << "embedding vocab " << vocab << " x hidden " << hidden << ", " << num_tokens
                             << " tokens: tolerance bit-exact (a copy)" << bad.first();
}

TEST(ElementwiseKernels, EmbeddingLlama3VocabIsBitExact) { check_embedding(128256, 4096, 1000, 11); }

TEST(ElementwiseKernels, EmbeddingScalarPathIsBitExact) { check_embedding(1000, 100, 37, 12); }

// ---------------------------------------------------------------------------------------------
// rms_norm / add_rms_norm: LlamaRMSNorm in bf16.

// An x·inv_rms this close (relative) to a bf16 rounding tie may round either way on the GPU: its fp32
// sum of squares (another order) and rsqrtf (2 ulp) differ from the double reference by ~1e-7.
constexpr double kRmsTieWindow = 1e-5;
const char* const kRmsTolerance =
    "tolerance: bit-exact with the bf16 emulation y = bf16(x * inv_rms), out = bf16(w * y) (inv_rms in double); "
    "where x * inv_rms lies within 1e-5 relative of a bf16 rounding tie, y rounded the other way is accepted too";

// Whether `got` is an output the contract allows for one element (see kRmsTieWindow).
bool rms_element_ok(uint16_t got, float x, float w, double inv_rms, uint16_t* expected) {
  const double scaled = double(x) * inv_rms;
  const uint16_t y = f32_to_bf16(static_cast<float>(scaled));
  *expected = f32_to_bf16(w * f32(y));  // bf16 x bf16 is exact in fp32: one rounding
  if (got == *expected) return true;
  // The two bf16 magnitudes around |scaled|, and the tie between them.
  const double magnitude = std::fabs(scaled);
  const uint16_t below = static_cast<uint16_t>(f32_to_bits(static_cast<float>(magnitude)) >> 16);
  const double lower = f32(below), upper = f32(static_cast<uint16_t>(below + 1));
  if (std::fabs(magnitude - 0.5 * (lower + upper)) > kRmsTieWindow * magnitude) return false;
  const uint16_t sign = scaled < 0 ? 0x8000u : 0;
  const uint16_t other = (y & 0x7FFFu) == below ? static_cast<uint16_t>(below + 1) : below;
  return got == f32_to_bf16(w * f32(static_cast<uint16_t>(other | sign)));
}

double inverse_rms(const float* x, int hidden, float eps) {
  double sum_squares = 0;
  for (int i = 0; i < hidden; ++i) sum_squares += double(x[i]) * x[i];
  return 1.0 / std::sqrt(sum_squares / hidden + double(eps));
}

// Rows get different scales (2^-6 .. 2^6) so the normalisation really rescales.
std::vector<uint16_t> random_rows(Rng& rng, int num_rows, int hidden) {
  std::vector<uint16_t> x(size_t(num_rows) * hidden);
  for (int r = 0; r < num_rows; ++r) {
    const double scale = std::ldexp(1.0, static_cast<int>(rng.next_u64() % 13) - 6);
    for (int c = 0; c < hidden; ++c)
      x[size_t(r) * hidden + c] = f32_to_bf16(static_cast<float>(scale * (2.0 * rng.uniform() - 1.0)));
  }
  return x;
}

// rows_selected: empty for out[r] = norm(x[r]); else out[r] = norm(x[rows_selected[r]]).
void check_rms_norm(int num_x_rows, int hidden, std::vector<int32_t> rows_selected, uint64_t seed) {
  Rng rng(seed);
  const float eps = 1e-5f;
  const auto x = random_rows(rng, num_x_rows, hidden);
  const auto weight = random_bf16(rng, hidden, 0.25, 2.0);
  const int num_rows = rows_selected.empty() ? num_x_rows : static_cast<int>(rows_selected.size());

  TestStream stream;
  DeviceBuffer d_x = to_device(x), d_weight = to_device(weight);
  DeviceBuffer d_rows = rows_selected.empty() ? DeviceBuffer() : to_device(rows_selected);
  DeviceBuffer d_out = poisoned(size_t(num_rows) * hidden * sizeof(uint16_t));
  rms_norm(as_bf16(d_x), rows_selected.empty() ? nullptr : d_rows.as<int32_t>(), as_bf16(d_weight), eps, num_rows,
           hidden, as_bf16(d_out), stream);
  stream.sync();
  const auto out = to_host<uint16_t>(d_out);

  Mismatches bad;
  std::vector<float> row(hidden);
  for (int r = 0; r < num_rows; ++r) {
    const size_t source = rows_selected.empty() ? r : rows_selected[r];
    for (int c = 0; c < hidden; ++c) row[c] = f32(x[source * hidden + c]);
    const double inv_rms = inverse_rms(row.data(), hidden, eps);
    for (int c = 0; c < hidden; ++c) {
      uint16_t expected = 0;
      const uint16_t got = out[size_t(r) * hidden + c];
      if (!rms_element_ok(got, row[c], f32(weight[c]), inv_rms, &expected)) bad.add(at("out", r, c), f32(got), f32(expected));
    }
  }
  EXPECT_EQ(bad.count(), 0u) << "rms_norm " << num_rows << " rows x " << hidden << ": " << kRmsTolerance << bad.first();
  EXPECT_TRUE(to_host<uint16_t>(d_x) == x) << "rms_norm wrote its input";
}

void check_add_rms_norm(int num_rows, int hidden, uint64_t seed) {
  Rng rng(seed);
  const float eps = 1e-6f;
  const auto residual = random_rows(rng, num_rows, hidden);
  const auto delta = random_rows(rng, num_rows, hidden);
  const auto weight = random_bf16(rng, hidden, 0.25, 2.0);

  TestStream stream;
  DeviceBuffer d_residual = to_device(residual), d_delta = to_device(delta), d_weight = to_device(weight);
  DeviceBuffer d_out = poisoned(size_t(num_rows) * hidden * sizeof(uint16_t));
  add_rms_norm(as_bf16(d_residual), as_bf16(d_delta), as_bf16(d_weight), eps, num_rows, hidden, as_bf16(d_out),
               stream);
  stream.sync();
  const auto out = to_host<uint16_t>(d_out), new_residual = to_host<uint16_t>(d_residual);

  Mismatches bad_residual, bad_out;
  std::vector<float> row(hidden);
  for (int r = 0; r < num_rows; ++r) {
    for (int c = 0; c < hidden; ++c) {
      const size_t i = size_t(r) * hidden + c;
      const uint16_t sum = f32_to_bf16(f32(residual[i]) + f32(delta[i]));  // bf16 add: fp32, one rounding
      if (new_residual[i] != sum) bad_residual.add(at("residual", r, c), f32(new_residual[i]), f32(sum));
      row[c] = f32(sum);
    }
    const double inv_rms = inverse_rms(row.data(), hidden, eps);
    for (int c = 0; c < hidden; ++c) {
      uint16_t expected = 0;
      const uint16_t got = out[size_t(r) * hidden + c];
      if (!rms_element_ok(got, row[c], f32(weight[c]), inv_rms, &expected)) bad_out.add(at("out", r, c), f32(got), f32(expected));
    }
  }
  EXPECT_EQ(bad_residual.count(), 0u) << "add_rms_norm " << num_rows << " x " << hidden
                                      << ": residual tolerance bit-exact (bf16(residual + delta))" << bad_residual.first();
  EXPECT_EQ(bad_out.count(), 0u) << "add_rms_norm " << num_rows << " x " << hidden << ": " << kRmsTolerance
                                 << bad_out.first();
}

TEST(ElementwiseKernels, RmsNormLargeBatch) { check_rms_norm(4096, 4096, {}, 21); }
TEST(ElementwiseKernels, RmsNormOneRow) { check_rms_norm(1, 4096, {}, 22); }
TEST(ElementwiseKernels, RmsNormWidestRow) { check_rms_norm(300, 16384, {}, 23); }
TEST(ElementwiseKernels, RmsNormWarpPerRowWidths) {
  for (int hidden : {64, 256, 512, 1024}) check_rms_norm(333, hidden, {}, 24 + hidden);  // 333: a partial CTA of rows
}
TEST(ElementwiseKernels, RmsNormOddWidthsTakeTheScalarPath) {
  check_rms_norm(1000, 1003, {}, 25);
  check_rms_norm(7, 20000, {}, 26);  // wider than the vectorised kernels hold in registers
}
TEST(ElementwiseKernels, RmsNormSelectedRows) {
  std::vector<int32_t> rows;  // e.g. each sequence's last token before the LM head, out of order
  for (int r = 4095; r >= 0; r -= 41) rows.push_back(r);
  rows.push_back(0);
  check_rms_norm(4096, 4096, rows, 27);
}
TEST(ElementwiseKernels, AddRmsNormLargeBatch) { check_add_rms_norm(4096, 4096, 31); }
TEST(ElementwiseKernels, AddRmsNormOtherWidths) {
  check_add_rms_norm(1, 8192, 32);
  check_add_rms_norm(200, 16384, 33);
  check_add_rms_norm(333, 512, 34);
  check_add_rms_norm(100, 1003, 35);
}

// ---------------------------------------------------------------------------------------------
// rope_kv_write

struct RopeCase {
  int num_tokens, num_heads, num_kv_heads, head_dim;
  uint64_t seed;
};

// Llama 3's base frequencies (theta 500000), in fp32 as the backend passes them.
std::vector<float> inverse_frequencies(int head_dim) {
  std::vector<float> inv_freq(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i)
    inv_freq[i] = static_cast<float>(1.0 / std::pow(500000.0, 2.0 * i / head_dim));
  return inv_freq;
}

void check_rope_kv_write(const RopeCase& c) {
  Rng rng(c.seed);
  const int D = c.head_dim, half = D / 2;
  const int64_t kv_size = int64_t{c.num_kv_heads} * D, width = int64_t{c.num_heads} * D + 2 * kv_size;
  const auto qkv = random_bf16(rng, size_t(c.num_tokens) * width, -4.0, 4.0);
  const auto inv_freq = inverse_frequencies(D);
  std::vector<int32_t> positions(c.num_tokens);
  for (auto& p : positions) p = static_cast<int32_t>(rng.next_u64() % 131001);
  positions[0] = 131000;  // the largest angle
  if (c.num_tokens > 1) positions[1] = 0;
  // Distinct slots out of twice as many as tokens; every 10th token a padding row (-1).
  const int64_t num_slots = 2 * int64_t{c.num_tokens};
  std::vector<int64_t> slots(num_slots);
  for (int64_t s = 0; s < num_slots; ++s) slots[s] = s;
  for (int64_t s = num_slots - 1; s > 0; --s) std::swap(slots[s], slots[rng.next_u64() % (s + 1)]);
  std::vector<int64_t> slot_mapping(slots.begin(), slots.begin() + c.num_tokens);
  for (int t = 5; t < c.num_tokens; t += 10) slot_mapping[t] = -1;

  TestStream stream;
  DeviceBuffer d_qkv = to_device(qkv), d_positions = to_device(positions), d_slots = to_device(slot_mapping),
               d_inv_freq = to_device(inv_freq);
  DeviceBuffer d_k_cache = poisoned(num_slots * kv_size * sizeof(uint16_t));
  DeviceBuffer d_v_cache = poisoned(num_slots * kv_size * sizeof(uint16_t));
  rope_kv_write(as_bf16(d_qkv), d_positions.as<int32_t>(), d_slots.as<int64_t>(), d_inv_freq.as<float>(), c.num_tokens,
                c.num_heads, c.num_kv_heads, D, as_bf16(d_k_cache), as_bf16(d_v_cache), stream);
  stream.sync();
  const auto out = to_host<uint16_t>(d_qkv), k_cache = to_host<uint16_t>(d_k_cache),
             v_cache = to_host<uint16_t>(d_v_cache);

  // Rotation tolerance against a reference doing transformers' bf16 steps in double: 1 bf16 ulp of
  // ref, plus 2^-16 (|a| + |b|) for outputs so small after cancellation that fp32 error exceeds
  // their ulp, plus 2^-7 (|a| + |b|) only where sincosf's cos/sin sits within 1e-6 of a bf16 tie.
  Mismatches bad_rotated, bad_v, bad_k_cache, bad_v_cache, bad_untouched;
  std::vector<bool> written(num_slots, false);
  for (int t = 0; t < c.num_tokens; ++t) {
    const size_t row = size_t(t) * width;
    for (int i = 0; i < half; ++i) {
      const float angle = static_cast<float>(positions[t]) * inv_freq[i];  // fp32, as the contract
      // transformers' bf16 rotation: cos/sin rounded to bf16, each product rounded, then the sum.
      const float cos_f = static_cast<float>(std::cos(double(angle))), sin_f = static_cast<float>(std::sin(double(angle)));
      const double cosine = f32(f32_to_bf16(cos_f)), sine = f32(f32_to_bf16(sin_f));
      // sincosf may land on the other side of a bf16 rounding tie than the double reference.
      auto near_tie = [](float v) {
        const float rounded = bf16_to_f32(f32_to_bf16(v));
        const float ulp = std::ldexp(1.0f, std::ilogb(v == 0 ? 1.0f : v) - 7);
        return std::fabs(std::fabs(v - rounded) - 0.5f * ulp) <= 1e-6f * std::fabs(v);
      };
      const double tie_slack = (near_tie(cos_f) || near_tie(sin_f)) ? 1.0 / 128 : 0.0;
      auto bf = [&](double x) { return f32(f32_to_bf16(static_cast<float>(x))); };
      for (int h = 0; h < c.num_heads + c.num_kv_heads; ++h) {
        const size_t lo = row + size_t(h) * D + i, hi = lo + half;
        const double a = f32(qkv[lo]), b = f32(qkv[hi]);
        const double refs[2] = {bf(bf(a * cosine) - bf(b * sine)), bf(bf(b * cosine) + bf(a * sine))};
        const size_t index[2] = {lo, hi};
        for (int k = 0; k < 2; ++k) {
          const double got = f32(out[index[k]]);
          const double tolerance =
              bf16_ulp(refs[k]) + std::ldexp(std::fabs(a) + std::fabs(b), -16) + tie_slack * (std::fabs(a) + std::fabs(b));
          if (!(std::fabs(got - refs[k]) <= tolerance))
            bad_rotated.add(at(h < c.num_heads ? "q" : "k", t, index[k] - row), got, refs[k]);
        }
      }
    }
    for (int64_t j = 0; j < kv_size; ++j) {
      const size_t v = row + size_t(c.num_heads) * D + kv_size + j;
      if (out[v] != qkv[v]) bad_v.add(at("v (in qkv)", t, j), f32(out[v]), f32(qkv[v]));
    }
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    written[slot] = true;
    for (int64_t j = 0; j < kv_size; ++j) {
      const size_t k = row + size_t(c.num_heads) * D + j, v = k + kv_size, cached = size_t(slot) * kv_size + j;
      if (k_cache[cached] != out[k]) bad_k_cache.add(at("k_cache slot", slot, j), f32(k_cache[cached]), f32(out[k]));
      if (v_cache[cached] != qkv[v]) bad_v_cache.add(at("v_cache slot", slot, j), f32(v_cache[cached]), f32(qkv[v]));
    }
  }
  for (int64_t s = 0; s < num_slots; ++s) {
    if (written[s]) continue;
    for (int64_t j = 0; j < kv_size; ++j) {
      const size_t cached = size_t(s) * kv_size + j;
      if (k_cache[cached] != kPoison || v_cache[cached] != kPoison)
        bad_untouched.add(at("cache slot not in slot_mapping", s, j), f32(k_cache[cached]), f32(kPoison));
    }
  }
  const std::string what = "rope_kv_write " + std::to_string(c.num_tokens) + " tokens, " +
                           std::to_string(c.num_heads) + "/" + std::to_string(c.num_kv_heads) + " heads, head_dim " +
                           std::to_string(D);
  EXPECT_EQ(bad_rotated.count(), 0u) << what << ": q, k tolerance |got - ref| <= 1 bf16 ulp of ref + 2^-16 (|a| + |b|)"
                                     << bad_rotated.first();
  EXPECT_EQ(bad_v.count(), 0u) << what << ": v in qkv must be untouched (bit-exact)" << bad_v.first();
  EXPECT_EQ(bad_k_cache.count(), 0u) << what << ": k_cache bit-exact with the rotated k" << bad_k_cache.first();
  EXPECT_EQ(bad_v_cache.count(), 0u) << what << ": v_cache bit-exact with v" << bad_v_cache.first();
  EXPECT_EQ(bad_untouched.count(), 0u) << what << ": slots not written (absent or -1) must stay poisoned"
                                       << bad_untouched.first();
}

// The FP8 cache (--kv-cache-dtype fp8): the same launch into byte caches poisoned with 0xFF (an
// E4M3 NaN, which a saturating encoder never writes) must leave qkv exactly as the bf16 launch
// does and store, bit for bit, the host's E4M3 code of each rotated k / v value times 1/scale.
void check_rope_kv_write_fp8(const RopeCase& c, float k_scale, float v_scale) {
  Rng rng(c.seed);
  const int D = c.head_dim;
  const int64_t kv_size = int64_t{c.num_kv_heads} * D, width = int64_t{c.num_heads} * D + 2 * kv_size;
  const auto qkv = random_bf16(rng, size_t(c.num_tokens) * width, -4.0, 4.0);
  const auto inv_freq = inverse_frequencies(D);
  std::vector<int32_t> positions(c.num_tokens);
  for (auto& p : positions) p = static_cast<int32_t>(rng.next_u64() % 131001);
  const int64_t num_slots = 2 * int64_t{c.num_tokens};
  std::vector<int64_t> slot_mapping(c.num_tokens);
  for (int t = 0; t < c.num_tokens; ++t) slot_mapping[t] = t % 7 == 3 ? -1 : num_slots - 1 - 2 * t;

  TestStream stream;
  DeviceBuffer d_positions = to_device(positions), d_slots = to_device(slot_mapping), d_inv_freq = to_device(inv_freq);
  DeviceBuffer d_qkv_bf16 = to_device(qkv), d_qkv_fp8 = to_device(qkv);
  DeviceBuffer d_k_bf16 = poisoned(num_slots * kv_size * 2), d_v_bf16 = poisoned(num_slots * kv_size * 2);
  DeviceBuffer d_k_fp8 = poisoned(num_slots * kv_size), d_v_fp8 = poisoned(num_slots * kv_size);
  rope_kv_write(as_bf16(d_qkv_bf16), d_positions.as<int32_t>(), d_slots.as<int64_t>(), d_inv_freq.as<float>(),
                c.num_tokens, c.num_heads, c.num_kv_heads, D, as_bf16(d_k_bf16), as_bf16(d_v_bf16), stream);
  rope_kv_write(as_bf16(d_qkv_fp8), d_positions.as<int32_t>(), d_slots.as<int64_t>(), d_inv_freq.as<float>(),
                c.num_tokens, c.num_heads, c.num_kv_heads, D, d_k_fp8.data(), d_v_fp8.data(), KvCacheFormat::Fp8E4M3,
                k_scale, v_scale, stream);
  stream.sync();
  const auto out_bf16 = to_host<uint16_t>(d_qkv_bf16), out_fp8 = to_host<uint16_t>(d_qkv_fp8);
  const auto k_codes = to_host<uint8_t>(d_k_fp8), v_codes = to_host<uint8_t>(d_v_fp8);
  EXPECT_EQ(out_fp8, out_bf16) << "the FP8 cache must not change the rotated q/k rows";
  const float k_inv = 1.0f / k_scale, v_inv = 1.0f / v_scale;
  size_t bad = 0, untouched_bad = 0, checked = 0;
  std::vector<bool> written(num_slots, false);
  for (int t = 0; t < c.num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    written[slot] = true;
    const size_t row = size_t(t) * width + size_t(c.num_heads) * D;
    for (int64_t j = 0; j < kv_size; ++j, checked += 2) {
      const uint8_t want_k = quant::encode_e4m3(f32(out_bf16[row + j]) * k_inv);
      const uint8_t want_v = quant::encode_e4m3(f32(out_bf16[row + kv_size + j]) * v_inv);
      const size_t cached = size_t(slot) * kv_size + j;
      if ((k_codes[cached] != want_k || v_codes[cached] != want_v) && bad++ < 5)
        ADD_FAILURE() << "token " << t << " slot " << slot << " element " << j << ": k code 0x" << std::hex
                      << int(k_codes[cached]) << " want 0x" << int(want_k) << ", v code 0x" << int(v_codes[cached])
                      << " want 0x" << int(want_v) << std::dec;
    }
  }
  for (int64_t s = 0; s < num_slots; ++s)
    if (!written[s])
      for (int64_t j = 0; j < kv_size; ++j)
        if (k_codes[size_t(s) * kv_size + j] != 0xFF || v_codes[size_t(s) * kv_size + j] != 0xFF) ++untouched_bad;
  EXPECT_GT(checked, 0u);
  EXPECT_EQ(bad, 0u) << "FP8 cache codes differ from the host encoder";
  EXPECT_EQ(untouched_bad, 0u) << "slots not written (absent or -1) must stay poisoned";
}

TEST(ElementwiseKernels, RopeKvWriteFp8CacheHeadDim128) { check_rope_kv_write_fp8({300, 32, 8, 128, 47}, 1.0f, 1.0f); }
TEST(ElementwiseKernels, RopeKvWriteFp8CacheScaledHeadDim64) { check_rope_kv_write_fp8({77, 32, 8, 64, 48}, 0.0625f, 3.0f); }
TEST(ElementwiseKernels, RopeKvWriteFp8CacheScalarPath) { check_rope_kv_write_fp8({40, 6, 2, 36, 49}, 1.0f, 0.5f); }
TEST(ElementwiseKernels, RopeKvWriteFp8CacheOneDecodeToken) { check_rope_kv_write_fp8({1, 32, 8, 128, 50}, 1.0f, 1.0f); }

TEST(ElementwiseKernels, RopeKvWriteHeadDim128Gqa) { check_rope_kv_write({4096, 32, 8, 128, 41}); }
TEST(ElementwiseKernels, RopeKvWriteHeadDim64Gqa) { check_rope_kv_write({4096, 32, 8, 64, 42}); }
TEST(ElementwiseKernels, RopeKvWriteHeadDim256) { check_rope_kv_write({500, 8, 1, 256, 43}); }
TEST(ElementwiseKernels, RopeKvWriteScalarPath) { check_rope_kv_write({300, 6, 2, 36, 44}); }  // head_dim/2 = 18
TEST(ElementwiseKernels, RopeKvWriteOneDecodeToken) { check_rope_kv_write({1, 32, 8, 128, 45}); }
// A few tokens spread over several CTAs each (the items of a token split between them).
TEST(ElementwiseKernels, RopeKvWriteFiveDecodeTokens) { check_rope_kv_write({5, 32, 8, 128, 46}); }
TEST(ElementwiseKernels, RopeKvWriteThreeTokensScalarPath) { check_rope_kv_write({3, 6, 2, 36, 47}); }

// ---------------------------------------------------------------------------------------------
// silu_mul

void check_silu_mul(int num_tokens, int inter, uint64_t seed) {
  Rng rng(seed);
  const auto gate_up = random_bf16(rng, size_t(num_tokens) * 2 * inter, -10.0, 10.0);
  TestStream stream;
  DeviceBuffer d_gate_up = to_device(gate_up);
  DeviceBuffer d_out = poisoned(size_t(num_tokens) * inter * sizeof(uint16_t));
  silu_mul(as_bf16(d_gate_up), num_tokens, inter, as_bf16(d_out), stream);
  stream.sync();
  const auto out = to_host<uint16_t>(d_out);

  // fp32 silu(g) * u rounded once; the GPU's expf and the host's differ by an fp32 ulp or two, which
  // can move the rounding by at most 1 bf16 ulp.
  Mismatches bad;
  for (int t = 0; t < num_tokens; ++t)
    for (int i = 0; i < inter; ++i) {
      const float g = f32(gate_up[size_t(t) * 2 * inter + i]), u = f32(gate_up[size_t(t) * 2 * inter + inter + i]);
      const double ref = f32(f32_to_bf16(g / (1.0f + std::exp(-g)) * u));
      const double got = f32(out[size_t(t) * inter + i]);
      if (!(std::fabs(got - ref) <= bf16_ulp(ref))) bad.add(at("out", t, i), got, ref);
    }
  EXPECT_EQ(bad.count(), 0u) << "silu_mul " << num_tokens << " x " << inter
                             << ": tolerance |got - ref| <= 1 bf16 ulp of ref" << bad.first();
}

TEST(ElementwiseKernels, SiluMulLlama8bPrefill) { check_silu_mul(2048, 14336, 51); }
TEST(ElementwiseKernels, SiluMulScalarPath) { check_silu_mul(100, 1001, 52); }

// ---------------------------------------------------------------------------------------------
// copy_blocks

void check_copy_blocks(int num_layers, int num_blocks, int64_t block_elements, uint64_t seed) {
  Rng rng(seed);
  const int64_t layer_stride = num_blocks * block_elements;
  // Pairs: sources from the first half of the blocks (one copied twice), destinations from the second.
  std::vector<int32_t> pairs;
  for (int i = 0; i < num_blocks / 4; ++i) {
    pairs.push_back(static_cast<int32_t>(rng.next_u64() % (num_blocks / 2)));
    pairs.push_back(num_blocks / 2 + 2 * i);
  }
  pairs[2] = pairs[0];
  const int num_pairs = static_cast<int>(pairs.size() / 2);
  std::vector<bool> is_destination(num_blocks, false);
  for (int p = 0; p < num_pairs; ++p) is_destination[pairs[2 * p + 1]] = true;
  // Random caches whose destination blocks are poisoned, so a block not copied shows as NaN.
  auto random_cache = [&] {
    auto cache = random_bf16(rng, size_t(num_layers) * layer_stride, -3.0, 3.0);
    for (int l = 0; l < num_layers; ++l)
      for (int b = 0; b < num_blocks; ++b)
        if (is_destination[b])
          std::fill_n(cache.begin() + l * layer_stride + b * block_elements, block_elements, kPoison);
    return cache;
  };
  const auto k_cache = random_cache(), v_cache = random_cache();

  TestStream stream;
  DeviceBuffer d_k = to_device(k_cache), d_v = to_device(v_cache), d_pairs = to_device(pairs);
  copy_blocks(as_bf16(d_k), as_bf16(d_v), d_pairs.as<int32_t>(), num_pairs, num_layers, layer_stride, block_elements,
              stream);
  stream.sync();
  const auto k_out = to_host<uint16_t>(d_k), v_out = to_host<uint16_t>(d_v);

  // Expected: each destination holds its source; every other block is unchanged. Bit-exact.
  auto expected = [&](const std::vector<uint16_t>& cache) {
    auto result = cache;
    for (int l = 0; l < num_layers; ++l)
      for (int p = 0; p < num_pairs; ++p)
        std::copy_n(cache.begin() + l * layer_stride + pairs[2 * p] * block_elements, block_elements,
                    result.begin() + l * layer_stride + pairs[2 * p + 1] * block_elements);
    return result;
  };
  const char* names[2] = {"k_cache", "v_cache"};
  const std::vector<uint16_t>* got[2] = {&k_out, &v_out};
  const std::vector<uint16_t> want[2] = {expected(k_cache), expected(v_cache)};
  for (int which = 0; which < 2; ++which) {
    Mismatches bad;
    for (size_t i = 0; i < want[which].size(); ++i)
      if ((*got[which])[i] != want[which][i])
        bad.add(at(names[which], i / block_elements, i % block_elements), f32((*got[which])[i]), f32(want[which][i]));
    EXPECT_EQ(bad.count(), 0u) << "copy_blocks " << num_layers << " layers, " << num_pairs << " pairs, "
                               << block_elements << " elements a block: " << names[which]
                               << " tolerance bit-exact (rows are [layer * num_blocks + block])" << bad.first();
  }
}

// 16 tokens x 8 KV heads x 128 = 16384 elements a block, as Llama-3-8B's cache.
TEST(ElementwiseKernels, CopyBlocksEveryLayerKAndV) { check_copy_blocks(8, 256, 16 * 8 * 128, 61); }
TEST(ElementwiseKernels, CopyBlocksScalarPath) { check_copy_blocks(3, 40, 7 * 3 * 5, 62); }

// ---------------------------------------------------------------------------------------------
// add_bias (in place)

void check_add_bias(int rows, int n, uint64_t seed) {
  Rng rng(seed);
  const auto x = random_bf16(rng, size_t(rows) * n, -8.0, 8.0), bias = random_bf16(rng, n, -1.0, 1.0);
  TestStream stream;
  DeviceBuffer d_x = to_device(x), d_bias = to_device(bias);
  add_bias(as_bf16(d_x), as_bf16(d_bias), rows, n, stream);
  stream.sync();
  const auto out = to_host<uint16_t>(d_x);
  Mismatches bad;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < n; ++c) {
      const size_t i = size_t(r) * n + c;
      const uint16_t ref = f32_to_bf16(f32(bias[c]) + f32(x[i]));  // fp32 add, one rounding
      if (out[i] != ref) bad.add(at("x", r, c), f32(out[i]), f32(ref));
    }
  EXPECT_EQ(bad.count(), 0u) << "add_bias " << rows << " x " << n << ": tolerance bit-exact (bf16(bias + x))"
                             << bad.first();
}

TEST(ElementwiseKernels, AddBiasInPlace) { check_add_bias(4096, 4096, 71); }
TEST(ElementwiseKernels, AddBiasScalarPath) { check_add_bias(300, 1003, 72); }

// ---------------------------------------------------------------------------------------------
// Empty batches (e.g. a step with nothing to prefill) launch nothing and touch nothing.

TEST(ElementwiseKernels, ZeroRowsLaunchNothing) {
  TestStream stream;
  DeviceBuffer out = poisoned(1024), cache = poisoned(1024);
  bf16* p = as_bf16(out);
  embedding(nullptr, nullptr, 0, 4096, p, stream);
  rms_norm(nullptr, nullptr, nullptr, 1e-5f, 0, 4096, p, stream);
  add_rms_norm(p, nullptr, nullptr, 1e-5f, 0, 4096, p, stream);
  rope_kv_write(p, nullptr, nullptr, nullptr, 0, 32, 8, 128, as_bf16(cache), as_bf16(cache), stream);
  silu_mul(nullptr, 0, 14336, p, stream);
  copy_blocks(as_bf16(cache), as_bf16(cache), nullptr, 0, 32, 4096, 4096, stream);
  add_bias(p, nullptr, 0, 4096, stream);
  stream.sync();
  for (const DeviceBuffer* buffer : {&out, &cache})
    for (uint16_t bits : to_host<uint16_t>(*buffer)) ASSERT_EQ(bits, kPoison) << "a launcher with 0 rows wrote memory";
}

}  // namespace
}  // namespace iol::backend::cuda::kernels
