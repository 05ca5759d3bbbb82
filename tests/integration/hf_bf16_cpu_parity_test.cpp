// The fp32 CPU reference backend against transformers running the same bf16 checkpoints in fp32 on
// the GPU (TF32 off; fixtures of tests/reference/make_hf_bf16_reference.py, shared with the CUDA
// backend's tests/gpu/hf_bf16_parity_test.cpp). Both sides compute in fp32 from the same weights, so
// they must agree to fp32 accumulation-order noise: 1e-3 of max |logit| (observed ≈ 1e-5), far
// below any real model bug. It also prints how far transformers' own bf16 run is from that exact
// result, the floor under any bf16 engine's distance to it.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../support/hf_bf16_fixture.hpp"
#include "iol/backend/cpu/cpu_backend.hpp"

namespace iol {
namespace {

class HfBf16CpuParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HfBf16CpuParity, PrefillLogitsMatchTransformersInFp32) {
  testing::Fixture fixture;
  ASSERT_TRUE(testing::load_fixture(GetParam(), fixture));
  model::LoadedModel loaded = testing::load_checkpoint(fixture);
  backend::cpu::CpuBackend backend(loaded.config, loaded.weights, /*num_kv_blocks=*/64, testing::kHfBf16BlockSize);
  for (const testing::PromptCase& c : fixture.cases) {
    const std::vector<float> logits = testing::prefill_logits(backend, c, fixture.vocab_size);
    testing::expect_logits_match(logits, c, fixture.vocab_size, {.against_fp32 = true, .fraction = 1e-3}, GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, HfBf16CpuParity, ::testing::Values("llama31-gqa", "qwen2-bias-tied"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace iol
