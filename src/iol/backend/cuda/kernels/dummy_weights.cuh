// Dummy weights drawn on the device, bit for bit the values ModelWeights::dummy draws on the host
// (model/model_weights.hpp, DummyRecipe): one thread per kDummyChunk chunk runs that chunk's
// xoshiro256** stream. Llama-3.1-8B's 16 GB appear in about a second, without a host copy.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace iol::backend::cuda::kernels {

void fill_dummy_bf16(__nv_bfloat16* out, size_t numel, uint64_t tensor_seed, double scale, double offset,
                     cudaStream_t stream);

}  // namespace iol::backend::cuda::kernels
