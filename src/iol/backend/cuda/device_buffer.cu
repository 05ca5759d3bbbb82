#include "iol/backend/cuda/device_buffer.hpp"

#include "iol/backend/cuda/cuda_check.hpp"

namespace iol::backend::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) {
    cudaError_t status = cudaMalloc(&data_, bytes);
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      data_ = nullptr;
      fail("cuda: cannot allocate {:.2f} GiB of device memory ({}); lower --gpu-memory-utilization, "
           "--max-num-seqs or --max-num-batched-tokens", static_cast<double>(bytes) / (1 << 30),
           cudaGetErrorString(status));
    }
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (data_) cudaFree(data_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::fill_bytes(int value) {
  if (bytes_) IOL_CUDA_CHECK(cudaMemset(data_, value, bytes_));
}

void DeviceBuffer::upload(const void* host, size_t bytes, size_t offset) {
  if (offset + bytes > bytes_) fail("cuda: upload of {} bytes at {} overruns a buffer of {}", bytes, offset, bytes_);
  if (bytes) IOL_CUDA_CHECK(cudaMemcpy(static_cast<char*>(data_) + offset, host, bytes, cudaMemcpyHostToDevice));
}

void DeviceBuffer::download(void* host, size_t bytes, size_t offset) const {
  if (offset + bytes > bytes_) fail("cuda: download of {} bytes at {} overruns a buffer of {}", bytes, offset, bytes_);
  if (bytes) IOL_CUDA_CHECK(cudaMemcpy(host, static_cast<const char*>(data_) + offset, bytes, cudaMemcpyDeviceToHost));
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) IOL_CUDA_CHECK(cudaMallocHost(&data_, bytes));
}

PinnedBuffer::~PinnedBuffer() {
  if (data_) cudaFreeHost(data_);
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFreeHost(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

}  // namespace iol::backend::cuda
