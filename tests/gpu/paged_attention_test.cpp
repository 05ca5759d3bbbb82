// Paged attention kernels (kernels/paged_attention_prefill.cu, paged_attention_decode.cu) against a
// plain C++ reference over the same bf16 inputs: scores, softmax and P·V in double. Each batch has
// fresh random inputs (never zeros), a shuffled block table, sequences of different shapes in one
// launch and a selection that leaves some sequences out: their rows must keep the 0xFF poison.
//
// Tolerance, per element: |got - ref| <= 4e-3 + 4e-3 * |ref|, with V uniform in (-1, 1).
// Why: both kernels round P to bf16 for the tensor-core P·V (as FlashAttention-2 does), a
// relative error <= 2^-9 per probability, so the numerator moves by at most
// 2^-9 * sum(p * |v|) <= 2^-9 * sum(p) * max|v| and the output by <= 2^-9 ~= 1.95e-3 (the sum
// is accumulated from the unrounded P). The bf16 output adds <= 2^-9 * |ref|. Scores are fp32
// sums of exact bf16 products and exp2 is ex2.approx (2 ulp): both ~1e-6. The bound is thus
// ~1.95e-3 * (1 + |ref|); the tolerance leaves a factor 2 (observed: at most 0.45 of it).
// NaN fails every comparison, and the outputs are poisoned with NaN before each launch.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime.h>
#include <fmt/format.h>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/device_buffer.hpp"
#include "iol/backend/cuda/kernels/paged_attention.cuh"
#include "iol/core/dtype.hpp"
#include "iol/core/rng.hpp"
#include "iol/quant/codec.hpp"

namespace iol::backend::cuda::kernels {
namespace {

constexpr double kAbsTol = 4e-3;
constexpr double kRelTol = 4e-3;
constexpr uint16_t kPoison = 0xFFFF;  // bf16 NaN, what fill_bytes(0xFF) writes
constexpr float kQueryRange = 6.0f;   // q in (-6, 6), k in (-1, 1): scores ~ N(0, 2^2), a peaked softmax
constexpr float kKeyValueRange = 1.0f;

struct SeqShape {
  int query_len;
  int context_len;
};

struct AttentionCase {
  std::string name;
  int head_dim, num_heads, num_kv_heads, block_size, sliding_window;
  std::vector<SeqShape> seqs;
  std::vector<int> selected;  // seq_indices, in launch order; the others must stay untouched
};

template <typename T>
DeviceBuffer to_device(const std::vector<T>& host) {
  DeviceBuffer buffer(std::max<size_t>(host.size() * sizeof(T), 16));
  buffer.upload(host.data(), host.size() * sizeof(T));
  return buffer;
}

// Uniform bf16 in (-range, range), never exactly 0 (the 16-bit lattice is offset by half a step).
void fill_uniform_bf16(std::vector<uint16_t>& values, float range, Rng& rng) {
  for (size_t i = 0; i < values.size(); i += 4) {
    uint64_t bits = rng.next_u64();
    for (size_t j = i; j < std::min(i + 4, values.size()); ++j, bits >>= 16) {
      const float unit = (static_cast<float>(bits & 0xffffu) + 0.5f) / 65536.0f;
      values[j] = f32_to_bf16((2.0f * unit - 1.0f) * range);
    }
  }
}

// One launch's inputs on the host and the device: fused qkv rows (q is the first num_heads *
// head_dim columns), a KV pool in shuffled blocks, block tables padded with foreign blocks.
struct Batch {
  AttentionCase c;
  int num_tokens = 0, q_row_stride = 0, max_blocks_per_seq = 0, num_blocks = 0;
  std::vector<int32_t> query_start_loc, context_lens, block_tables;
  std::vector<uint16_t> qkv, k_cache, v_cache;
  DeviceBuffer d_qkv, d_k, d_v, d_query_start_loc, d_context_lens, d_block_tables, d_seq_indices, d_out;
  // The FP8 pair (quantize_caches): E4M3 codes, read instead of d_k/d_v while read_fp8 is set.
  DeviceBuffer d_k_codes, d_v_codes;
  float k_scale = 1.0f, v_scale = 1.0f;
  bool read_fp8 = false;

  Batch(AttentionCase spec, uint64_t seed) : c(std::move(spec)) {
    Rng rng(seed);
    const int num_seqs = static_cast<int>(c.seqs.size());
    query_start_loc.push_back(0);
    int total_blocks = 0;
    for (const SeqShape& s : c.seqs) {
      query_start_loc.push_back(query_start_loc.back() + s.query_len);
      context_lens.push_back(s.context_len);
      const int blocks = (s.context_len + c.block_size - 1) / c.block_size;
      total_blocks += blocks;
      max_blocks_per_seq = std::max(max_blocks_per_seq, blocks);
    }
    max_blocks_per_seq += 2;              // padding entries the kernels must not use
    num_blocks = total_blocks + 5;        // spare blocks: padding points at them
    num_tokens = query_start_loc.back();
    q_row_stride = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;

    std::vector<int32_t> order(num_blocks);
    for (int i = 0; i < num_blocks; ++i) order[i] = i;
    for (int i = num_blocks - 1; i > 0; --i) std::swap(order[i], order[rng.next_u64() % (i + 1)]);
    block_tables.assign(static_cast<size_t>(num_seqs) * max_blocks_per_seq, 0);
    int next = 0;
    for (int s = 0; s < num_seqs; ++s) {
      const int blocks = (c.seqs[s].context_len + c.block_size - 1) / c.block_size;
      for (int b = 0; b < max_blocks_per_seq; ++b)
        block_tables[s * max_blocks_per_seq + b] =
            b < blocks ? order[next++] : order[total_blocks + static_cast<int>(rng.next_u64() % 5)];
    }

    qkv.resize(static_cast<size_t>(num_tokens) * q_row_stride);
    fill_uniform_bf16(qkv, kQueryRange, rng);
    const size_t cache_elems = static_cast<size_t>(num_blocks) * c.block_size * c.num_kv_heads * c.head_dim;
    k_cache.resize(cache_elems);
    v_cache.resize(cache_elems);
    fill_uniform_bf16(k_cache, kKeyValueRange, rng);
    fill_uniform_bf16(v_cache, kKeyValueRange, rng);

    d_qkv = to_device(qkv);
    d_k = to_device(k_cache);
    d_v = to_device(v_cache);
    d_query_start_loc = to_device(query_start_loc);
    d_context_lens = to_device(context_lens);
    d_block_tables = to_device(block_tables);
    d_seq_indices = to_device(std::vector<int32_t>(c.selected.begin(), c.selected.end()));
    d_out = DeviceBuffer(static_cast<size_t>(num_tokens) * c.num_heads * c.head_dim * sizeof(uint16_t));
  }

  // The caches as an FP8 cache holds them: E4M3 codes of K / k_scale (V / v_scale) on the device;
  // on the host and in the bf16 buffers, the values those codes are read back as, bf16(decode · s).
  void quantize_caches(float ks, float vs) {
    k_scale = ks;
    v_scale = vs;
    auto quantize = [](std::vector<uint16_t>& cache, float scale) {
      std::vector<uint8_t> codes(cache.size());
      const float inv = 1.0f / scale;
      for (size_t i = 0; i < cache.size(); ++i) {
        codes[i] = quant::encode_e4m3(bf16_to_f32(cache[i]) * inv);
        cache[i] = f32_to_bf16(quant::decode_e4m3(codes[i]) * scale);
      }
      return codes;
    };
    d_k_codes = to_device(quantize(k_cache, ks));
    d_v_codes = to_device(quantize(v_cache, vs));
    d_k = to_device(k_cache);
    d_v = to_device(v_cache);
  }

  PagedAttentionParams params() const {
    PagedAttentionParams p;
    p.q = d_qkv.as<__nv_bfloat16>();
    p.q_row_stride = q_row_stride;
    p.k_cache = d_k.as<__nv_bfloat16>();
    p.v_cache = d_v.as<__nv_bfloat16>();
    if (read_fp8) {
      p.k_cache = d_k_codes.data();
      p.v_cache = d_v_codes.data();
      p.kv_format = KvCacheFormat::Fp8E4M3;
      p.k_scale = k_scale;
      p.v_scale = v_scale;
    }
    p.query_start_loc = d_query_start_loc.as<int32_t>();
    p.context_lens = d_context_lens.as<int32_t>();
    p.block_tables = d_block_tables.as<int32_t>();
    p.max_blocks_per_seq = max_blocks_per_seq;
    p.seq_indices = d_seq_indices.as<int32_t>();
    p.num_selected = static_cast<int>(c.selected.size());
    for (int s : c.selected) {
      p.max_query_len = std::max(p.max_query_len, c.seqs[s].query_len);
      p.max_context_len = std::max(p.max_context_len, c.seqs[s].context_len);
    }
    p.num_heads = c.num_heads;
    p.num_kv_heads = c.num_kv_heads;
    p.head_dim = c.head_dim;
    p.block_size = c.block_size;
    p.sliding_window = c.sliding_window;
    p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    p.out = d_out.as<__nv_bfloat16>();
    return p;
  }

  std::vector<uint16_t> download_out() const {
    IOL_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<uint16_t> out(d_out.bytes() / sizeof(uint16_t));
    d_out.download(out.data(), d_out.bytes());
    return out;
  }

  std::vector<uint16_t> run_prefill() {
    d_out.fill_bytes(0xFF);
    paged_attention_prefill(params(), nullptr);
    return download_out();
  }

  std::vector<uint16_t> run_decode(int max_splits) {
    d_out.fill_bytes(0xFF);
    DeviceBuffer workspace(paged_attention_decode_workspace_bytes(static_cast<int>(c.seqs.size()), c.num_heads,
                                                                  c.head_dim, max_splits));
    workspace.fill_bytes(0xFF);  // a merge that reads an unwritten partial sees NaN
    paged_attention_decode_workspace_init(workspace.data(), static_cast<int>(c.seqs.size()), c.num_heads);
    paged_attention_decode(params(), static_cast<int>(c.seqs.size()), max_splits, workspace.data(), nullptr);
    return download_out();
  }

  // One workspace, cleared once, for every max_splits in turn (as CUDA graph replays use it): each
  // launch must leave the arrival counters at zero, or the next one merges too early.
  std::vector<std::vector<uint16_t>> run_decode_reusing_workspace(const std::vector<int>& max_splits_list,
                                                                  bool& counters_zero) {
    const int seqs = static_cast<int>(c.seqs.size());
    const int most = *std::max_element(max_splits_list.begin(), max_splits_list.end());
    const size_t bytes = paged_attention_decode_workspace_bytes(seqs, c.num_heads, c.head_dim, most);
    DeviceBuffer workspace(bytes);
    workspace.fill_bytes(0xFF);
    paged_attention_decode_workspace_init(workspace.data(), seqs, c.num_heads);
    std::vector<std::vector<uint16_t>> outs;
    for (int max_splits : max_splits_list) {
      d_out.fill_bytes(0xFF);
      paged_attention_decode(params(), seqs, max_splits, workspace.data(), nullptr);
      outs.push_back(download_out());
    }
    std::vector<int32_t> counters(static_cast<size_t>(seqs) * c.num_heads);
    workspace.download(counters.data(), counters.size() * sizeof(int32_t));
    counters_zero = std::all_of(counters.begin(), counters.end(), [](int32_t v) { return v == 0; });
    return outs;
  }

  // [num_tokens][num_heads * head_dim]; rows of unselected sequences are left NaN.
  std::vector<double> reference() const {
    const int d = c.head_dim, group = c.num_heads / c.num_kv_heads;
    const double scale = 1.0 / std::sqrt(static_cast<float>(d));  // the kernels get this float
    std::vector<double> ref(static_cast<size_t>(num_tokens) * c.num_heads * d, std::nan(""));
    std::vector<std::pair<int, int>> rows;  // (seq, query row)
    for (int s : c.selected)
      for (int t = 0; t < c.seqs[s].query_len; ++t) rows.emplace_back(s, t);
    std::atomic<size_t> next_row{0};
    auto worker = [&] {
      std::vector<double> scores, out(d);
      std::vector<float> q(d);
      for (size_t i; (i = next_row++) < rows.size();) {
        const int s = rows[i].first, t = rows[i].second;
        const int context_len = c.seqs[s].context_len;
        const int pos = context_len - c.seqs[s].query_len + t;
        const int lo = c.sliding_window > 0 ? std::max(0, pos - c.sliding_window + 1) : 0;
        const int token = query_start_loc[s] + t;
        scores.resize(pos - lo + 1);
        for (int h = 0; h < c.num_heads; ++h) {
          const int kv_head = h / group;
          for (int j = 0; j < d; ++j) q[j] = bf16_to_f32(qkv[static_cast<size_t>(token) * q_row_stride + h * d + j]);
          auto slot_row = [&](const std::vector<uint16_t>& cache, int key) {
            const int64_t slot = static_cast<int64_t>(block_tables[s * max_blocks_per_seq + key / c.block_size]) *
                                     c.block_size + key % c.block_size;
            return &cache[(slot * c.num_kv_heads + kv_head) * d];
          };
          double max_score = -std::numeric_limits<double>::infinity();
          for (int key = lo; key <= pos; ++key) {
            const uint16_t* k = slot_row(k_cache, key);
            double dot[4] = {0, 0, 0, 0};
            for (int j = 0; j < d; j += 4)
              for (int u = 0; u < 4; ++u) dot[u] += static_cast<double>(q[j + u]) * bf16_to_f32(k[j + u]);
            scores[key - lo] = (dot[0] + dot[1] + dot[2] + dot[3]) * scale;
            max_score = std::max(max_score, scores[key - lo]);
          }
          double sum = 0.0;
          std::fill(out.begin(), out.end(), 0.0);
          for (int key = lo; key <= pos; ++key) {
            const double prob = std::exp(scores[key - lo] - max_score);
            sum += prob;
            const uint16_t* v = slot_row(v_cache, key);
            for (int j = 0; j < d; ++j) out[j] += prob * bf16_to_f32(v[j]);
          }
          double* dst = &ref[(static_cast<size_t>(token) * c.num_heads + h) * d];
          for (int j = 0; j < d; ++j) dst[j] = out[j] / sum;
        }
      }
    };
    std::vector<std::thread> threads;
    const unsigned num_threads = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < num_threads; ++i) threads.emplace_back(worker);
    for (auto& thread : threads) thread.join();
    return ref;
  }
};

// Every element of every selected row within tolerance; every element of other rows still poison.
void expect_matches_reference(const Batch& batch, const std::vector<uint16_t>& got, const std::string& what) {
  const std::vector<double> ref = batch.reference();
  const AttentionCase& c = batch.c;
  const int row_width = c.num_heads * c.head_dim;
  std::vector<bool> selected(c.seqs.size(), false);
  for (int s : c.selected) selected[s] = true;
  size_t checked = 0, bad = 0, poison_broken = 0;
  double worst = 0.0;  // max |got - ref| / tolerance
  std::string examples;
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    for (int t = 0; t < c.seqs[s].query_len; ++t) {
      const int token = batch.query_start_loc[s] + t;
      for (int j = 0; j < row_width; ++j) {
        const size_t index = static_cast<size_t>(token) * row_width + j;
        if (!selected[s]) {
          if (got[index] != kPoison && ++poison_broken <= 3)
            examples += fmt::format("\n  unselected seq {} row {} col {} was written (0x{:04x})", s, t, j, got[index]);
          continue;
        }
        ++checked;
        const double value = bf16_to_f32(got[index]);
        const double tolerance = kAbsTol + kRelTol * std::fabs(ref[index]);
        const double error = std::fabs(value - ref[index]);
        if (!(error <= tolerance)) {  // NaN fails here
          if (++bad <= 8)
            examples += fmt::format("\n  seq {} (q {}, ctx {}) row {} head {} dim {}: got {} ref {:.6f} |err| {:.3g}", s,
                                    c.seqs[s].query_len, c.seqs[s].context_len, t, j / c.head_dim, j % c.head_dim,
                                    value, ref[index], error);
        } else {
          worst = std::max(worst, error / tolerance);
        }
      }
    }
  }
  EXPECT_GT(checked, 0u) << what;
  EXPECT_EQ(bad, 0u) << what << " [" << c.name << "]: " << bad << " of " << checked
                     << " elements outside |got - ref| <= 4e-3 + 4e-3 |ref|" << examples;
  EXPECT_EQ(poison_broken, 0u) << what << " [" << c.name << "]: rows of unselected sequences were written" << examples;
  std::printf("[ %s | %s ] %zu elements, worst |err| / tolerance %.3f\n", what.c_str(), c.name.c_str(), checked, worst);
}

void check_prefill(AttentionCase spec, uint64_t seed) {
  Batch batch(std::move(spec), seed);
  expect_matches_reference(batch, batch.run_prefill(), "prefill");
}

// Decode rows: query length 1 each; also checked through the prefill kernel (any query length).
void check_decode(AttentionCase spec, uint64_t seed, std::vector<int> max_splits_list) {
  Batch batch(std::move(spec), seed);
  for (int max_splits : max_splits_list)
    expect_matches_reference(batch, batch.run_decode(max_splits), fmt::format("decode max_splits={}", max_splits));
  bool counters_zero = false;
  const auto outs = batch.run_decode_reusing_workspace(max_splits_list, counters_zero);
  for (size_t i = 0; i < outs.size(); ++i)
    expect_matches_reference(batch, outs[i], fmt::format("decode max_splits={}, reused workspace", max_splits_list[i]));
  EXPECT_TRUE(counters_zero) << "a launch left an arrival counter set";
  expect_matches_reference(batch, batch.run_prefill(), "decode rows via prefill");
}

std::vector<SeqShape> decode_rows(std::vector<int> context_lens) {
  std::vector<SeqShape> seqs;
  for (int len : context_lens) seqs.push_back({1, len});
  return seqs;
}

std::vector<int> all_but(int count, std::vector<int> left_out, uint64_t seed) {
  std::vector<int> selected;
  for (int i = 0; i < count; ++i)
    if (std::find(left_out.begin(), left_out.end(), i) == left_out.end()) selected.push_back(i);
  Rng rng(seed);  // launch order differs from batch order
  for (int i = static_cast<int>(selected.size()) - 1; i > 0; --i)
    std::swap(selected[i], selected[rng.next_u64() % (i + 1)]);
  return selected;
}

// The FP8 cache: both kernels over E4M3 codes must give, bit for bit, what they give over a bf16
// cache holding the decoded values (the widened tiles are those values exactly), and so meet the
// reference on them. Random codes of uniform K/V; scales 1 (what the backend uses) and others.
void check_fp8_cache(AttentionCase spec, uint64_t seed, float k_scale, float v_scale, bool decode) {
  spec.selected = all_but(static_cast<int>(spec.seqs.size()), {}, seed);
  Batch batch(std::move(spec), seed);
  batch.quantize_caches(k_scale, v_scale);
  auto run = [&](bool fp8, int max_splits) {
    batch.read_fp8 = fp8;
    return decode ? batch.run_decode(max_splits) : batch.run_prefill();
  };
  for (int max_splits : decode ? std::vector<int>{1, 8, 64} : std::vector<int>{1}) {
    const auto over_codes = run(true, max_splits), over_bf16 = run(false, max_splits);
    size_t differ = 0;
    for (size_t i = 0; i < over_codes.size(); ++i) differ += over_codes[i] != over_bf16[i];
    EXPECT_EQ(differ, 0u) << (decode ? "decode" : "prefill") << " max_splits " << max_splits << ": " << differ
                          << " output elements differ between the FP8 cache and its decoded bf16 copy";
    expect_matches_reference(batch, over_codes, fmt::format("{} over an FP8 cache, scales {}/{}, max_splits={}",
                                                            decode ? "decode" : "prefill", k_scale, v_scale, max_splits));
  }
}

TEST(PagedAttentionFp8Cache, DecodeBatch64MixedContexts) {
  check_fp8_cache({"fp8 decode 64 seqs gqa 32/8 d128 bs16", 128, 32, 8, 16, 0,
                   decode_rows({1, 17, 64, 65, 300, 1000, 2049, 5000, 31, 129, 900, 1500, 2, 63, 128, 4000}), {}},
                  61, 1.0f, 1.0f, true);
}
TEST(PagedAttentionFp8Cache, DecodeHeadDim64Scaled) {
  check_fp8_cache({"fp8 decode gqa 12/4 d64 bs3", 64, 12, 4, 3, 0, decode_rows({5, 700, 1, 3000}), {}}, 62, 0.125f,
                  2.0f, true);
}
TEST(PagedAttentionFp8Cache, PrefillPromptChunkAndDecodeRows) {
  check_fp8_cache({"fp8 prefill gqa 32/8 d128 bs16", 128, 32, 8, 16, 0, {{700, 700}, {300, 1000}, {1, 77}, {5, 5}}, {}},
                  63, 1.0f, 1.0f, false);
}
TEST(PagedAttentionFp8Cache, PrefillHeadDim64WindowScaled) {
  check_fp8_cache({"fp8 prefill mha 8/8 d64 bs4 window 256", 64, 8, 8, 4, 256, {{400, 900}, {64, 64}}, {}}, 64, 0.5f,
                  0.25f, false);
}

TEST(PagedAttentionPrefill, Gqa32x8HeadDim128BlockSize16) {
  // A 2048-token prompt, a chunk of 300 of a 1000-token context, decode rows (one at a context that
  // is not a multiple of block_size, one at context 1), short prompts; seq 4 is not selected.
  check_prefill({"gqa 32/8, d128, bs16, window 0", 128, 32, 8, 16, 0,
                 {{2048, 2048}, {300, 1000}, {1, 777}, {1, 1}, {37, 37}, {5, 100}, {64, 200}},
                 all_but(7, {4}, 1)},
                11);
}

TEST(PagedAttentionPrefill, Mha8x8HeadDim64BlockSize4Window256) {
  check_prefill({"mha 8/8, d64, bs4, window 256", 64, 8, 8, 4, 256,
                 {{600, 600}, {300, 1000}, {1, 513}, {64, 64}, {17, 300}, {1, 1}, {255, 258}},
                 all_but(7, {3}, 2)},
                12);
}

TEST(PagedAttentionPrefill, Gqa32x8HeadDim64BlockSize32Window256) {
  check_prefill({"gqa 32/8, d64, bs32, window 256", 64, 32, 8, 32, 256,
                 {{1000, 1000}, {300, 1000}, {1, 4000}, {3, 3}, {129, 257}},
                 all_but(5, {}, 3)},
                13);
}

TEST(PagedAttentionPrefill, Mha8x8HeadDim128BlockSize4) {
  check_prefill({"mha 8/8, d128, bs4, window 0", 128, 8, 8, 4, 0,
                 {{257, 257}, {1, 1000}, {129, 500}, {2, 2}},
                 all_but(4, {2}, 4)},
                14);
}

TEST(PagedAttentionPrefill, Gqa16x2HeadDim128BlockSize32Window256) {
  check_prefill({"gqa 16/2, d128, bs32, window 256", 128, 16, 2, 32, 256,
                 {{500, 500}, {1, 1000}, {77, 900}},
                 all_but(3, {}, 5)},
                15);
}

TEST(PagedAttentionPrefill, Gqa12x4HeadDim64BlockSize1) {
  // A group of 3 (no power of two): one head per tile. block_size 1: every position its own block.
  check_prefill({"gqa 12/4, d64, bs1, window 0", 64, 12, 4, 1, 0,
                 {{700, 700}, {1, 300}, {33, 64}},
                 all_but(3, {}, 6)},
                16);
}

TEST(PagedAttentionDecode, Batch1Context32768ForcesSplits) {
  // 64 partitions of 512 with max_splits 128; 3 longer partitions; a single pass with max_splits 1.
  check_decode({"gqa 32/8, d128, bs16, window 0", 128, 32, 8, 16, 0, decode_rows({32768}), {0}}, 21,
               {128, 3, 1});
}

TEST(PagedAttentionDecode, Batch64MixedContexts) {
  Rng rng(22);
  std::vector<int> lens = {1, 2, 15, 16, 17, 511, 512, 513, 1024, 4000};
  while (lens.size() < 64) lens.push_back(1 + static_cast<int>(rng.next_u64() % 4000));
  check_decode({"gqa 32/8, d128, bs16, window 0", 128, 32, 8, 16, 0, decode_rows(lens), all_but(64, {3, 17, 40, 63}, 22)},
               23, {16, 4});
}

TEST(PagedAttentionDecode, Mha8x8HeadDim64BlockSize4Window256) {
  Rng rng(24);
  std::vector<int> lens = {1, 255, 256, 257, 3000};
  while (lens.size() < 16) lens.push_back(1 + static_cast<int>(rng.next_u64() % 3000));
  check_decode({"mha 8/8, d64, bs4, window 256", 64, 8, 8, 4, 256, decode_rows(lens), all_but(16, {5}, 24)}, 25,
               {8});
}

TEST(PagedAttentionDecode, Gqa16x2HeadDim128BlockSize32) {
  Rng rng(26);
  std::vector<int> lens = {5000, 1, 33};
  while (lens.size() < 8) lens.push_back(1 + static_cast<int>(rng.next_u64() % 5000));
  check_decode({"gqa 16/2, d128, bs32, window 0", 128, 16, 2, 32, 0, decode_rows(lens), all_but(8, {}, 26)}, 27,
               {8});
}

TEST(PagedAttentionDecode, Gqa12x4HeadDim64BlockSize3) {
  Rng rng(28);
  std::vector<int> lens = {1, 2, 3, 1500};
  while (lens.size() < 8) lens.push_back(1 + static_cast<int>(rng.next_u64() % 2000));
  check_decode({"gqa 12/4, d64, bs3, window 0", 64, 12, 4, 3, 0, decode_rows(lens), all_but(8, {1}, 28)}, 29, {8});
}

// Timings for docs/performance.md (printed, not asserted): K/V are constant bytes, which changes no
// memory traffic. GB/s counts the K and V bytes the decode rows attend.
TEST(PagedAttentionPerformance, Report) {
  auto time_us = [](auto&& launch) {
    cudaEvent_t start, stop;
    IOL_CUDA_CHECK(cudaEventCreate(&start));
    IOL_CUDA_CHECK(cudaEventCreate(&stop));
    launch();  // warm-up (and the shared-memory attribute)
    IOL_CUDA_CHECK(cudaEventRecord(start));
    constexpr int kIterations = 20;
    for (int i = 0; i < kIterations; ++i) launch();
    IOL_CUDA_CHECK(cudaEventRecord(stop));
    IOL_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    IOL_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    IOL_CUDA_CHECK(cudaEventDestroy(start));
    IOL_CUDA_CHECK(cudaEventDestroy(stop));
    return 1000.0 * ms / kIterations;
  };
  struct Shape {
    const char* name;
    int num_seqs, query_len, context_len;
  };
  const int num_heads = 32, num_kv_heads = 8, head_dim = 128, block_size = 16;
  for (const Shape& shape : {Shape{"prefill 1 x 2048", 1, 2048, 2048}, Shape{"prefill 4 x 512", 4, 512, 512},
                             Shape{"decode 1 x 32768", 1, 1, 32768}, Shape{"decode 64 x 2048", 64, 1, 2048},
                             Shape{"decode 64 x 4096", 64, 1, 4096}, Shape{"decode 256 x 1024", 256, 1, 1024}}) {
    const int blocks_per_seq = (shape.context_len + block_size - 1) / block_size;
    const int num_blocks = shape.num_seqs * blocks_per_seq;
    const size_t cache_bytes = static_cast<size_t>(num_blocks) * block_size * num_kv_heads * head_dim * 2;
    DeviceBuffer k(cache_bytes), v(cache_bytes);
    k.fill_bytes(0x3C);
    v.fill_bytes(0x3C);
    const int q_row_stride = (num_heads + 2 * num_kv_heads) * head_dim;
    const int num_tokens = shape.num_seqs * shape.query_len;
    DeviceBuffer qkv(static_cast<size_t>(num_tokens) * q_row_stride * 2), out(static_cast<size_t>(num_tokens) * num_heads * head_dim * 2);
    qkv.fill_bytes(0x3C);
    std::vector<int32_t> query_start_loc, context_lens(shape.num_seqs, shape.context_len), seq_indices, tables(num_blocks);
    for (int s = 0; s <= shape.num_seqs; ++s) query_start_loc.push_back(s * shape.query_len);
    for (int s = 0; s < shape.num_seqs; ++s) seq_indices.push_back(s);
    Rng rng(31);
    for (int i = 0; i < num_blocks; ++i) tables[i] = i;
    for (int i = num_blocks - 1; i > 0; --i) std::swap(tables[i], tables[rng.next_u64() % (i + 1)]);
    DeviceBuffer d_qsl = to_device(query_start_loc), d_ctx = to_device(context_lens), d_sel = to_device(seq_indices),
                 d_tables = to_device(tables);
    PagedAttentionParams p;
    p.q = qkv.as<__nv_bfloat16>();
    p.q_row_stride = q_row_stride;
    p.k_cache = k.as<__nv_bfloat16>();
    p.v_cache = v.as<__nv_bfloat16>();
    p.query_start_loc = d_qsl.as<int32_t>();
    p.context_lens = d_ctx.as<int32_t>();
    p.block_tables = d_tables.as<int32_t>();
    p.max_blocks_per_seq = blocks_per_seq;
    p.seq_indices = d_sel.as<int32_t>();
    p.num_selected = shape.num_seqs;
    p.max_query_len = shape.query_len;
    p.max_context_len = shape.context_len;
    p.num_heads = num_heads;
    p.num_kv_heads = num_kv_heads;
    p.head_dim = head_dim;
    p.block_size = block_size;
    p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    p.out = out.as<__nv_bfloat16>();
    if (shape.query_len > 1) {
      const double us = time_us([&] { paged_attention_prefill(p, nullptr); });
      // Causal: row i sees i + 1 keys; QK^T and PV are 2 flops per multiply-add each.
      const double pairs = static_cast<double>(shape.query_len) * (shape.query_len + 1) / 2 * shape.num_seqs;
      std::printf("[ perf | %s, gqa 32/8 d128 bs16 ] %.1f us, %.0f TFLOP/s\n", shape.name, us,
                  4.0 * pairs * num_heads * head_dim / us * 1e-6);
    } else {
      const int max_splits = 128;
      DeviceBuffer workspace(paged_attention_decode_workspace_bytes(shape.num_seqs, num_heads, head_dim, max_splits));
      paged_attention_decode_workspace_init(workspace.data(), shape.num_seqs, num_heads);
      const double us = time_us([&] { paged_attention_decode(p, shape.num_seqs, max_splits, workspace.data(), nullptr); });
      std::printf("[ perf | %s, gqa 32/8 d128 bs16 ] %.1f us, %.0f GB/s of K/V\n", shape.name, us,
                  2.0 * cache_bytes / us * 1e-3);
    }
  }
  IOL_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace iol::backend::cuda::kernels
