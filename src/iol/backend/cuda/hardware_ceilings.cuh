// The two ceilings every GPU figure is read against (docs/performance.md), measured in the same
// process as the engine: DRAM bandwidth of a read-only stream (what a decode step does with its
// weights) and of a device-to-device copy, and the cuBLASLt BF16 GEMM rate at 8192³.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace iol::backend::cuda {

class CublasLtGemm;

// Bytes/s and FLOP/s (0 when not measured); CudaBackend passes them on as HardwareCeilings.
struct MeasuredCeilings {
  double read_bytes_per_s = 0, copy_bytes_per_s = 0, bf16_gemm_flops = 0;
  int64_t stream_bytes = 0;
};

// Uses up to `max_stream_bytes` of device memory for the streams (less when less is free) and
// 384 MiB for the GEMM; frees both before returning. Medians of repeated timed runs after a warm-up.
MeasuredCeilings measure_hardware_ceilings(CublasLtGemm& gemm, cudaStream_t stream,
                                           size_t max_stream_bytes = size_t{4} << 30);

}  // namespace iol::backend::cuda
