#pragma once
// CUDA runtime glue: error reporting and an owning device buffer.
//
// Argument errors throw qtx::error (as everywhere in qtx); failures of the CUDA runtime itself
// (out of memory, launch failure, no device) throw qtx::cuda::runtime_error with the API call.
#if !defined(__CUDACC__)
#error "qtx/cuda/runtime.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda {

class runtime_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw runtime_error(std::string("qtx::cuda: ") + what + ": " + cudaGetErrorString(status));
}

// The launch itself reports configuration errors only through cudaGetLastError.
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

inline int device_sm_count() {
  int device = 0, sms = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "sm count");
  return sms;
}

// A kernel that needs more than 48 KiB of dynamic shared memory must opt in, once per device.
template <class Kernel>
void allow_dynamic_smem(Kernel kernel, int bytes) {
  constexpr int default_limit = 48 * 1024;
  if (bytes > default_limit)
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
               "cudaFuncSetAttribute(max dynamic shared memory)");
}

// Owning, move-only device allocation of n elements of T (cudaMalloc; freed on destruction).
template <class T>
class device_buffer {
 public:
  device_buffer() = default;
  explicit device_buffer(index_t n) { reset(n); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~device_buffer() { release(); }

  void reset(index_t n) {
    check(n >= 0, "cuda::device_buffer: negative size ", n);
    release();
    if (n > 0) check_cuda(cudaMalloc(reinterpret_cast<void**>(&data_), std::size_t(n) * sizeof(T)), "cudaMalloc");
    size_ = n;
  }
  T* data() const { return data_; }
  index_t size() const { return size_; }

  void upload(const T* host, index_t n) {
    check(n <= size_, "cuda::device_buffer::upload: ", n, " elements into a buffer of ", size_);
    if (n > 0) check_cuda(cudaMemcpy(data_, host, std::size_t(n) * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  void upload(const std::vector<T>& host) {
    if (index_t(host.size()) != size_) reset(index_t(host.size()));
    upload(host.data(), index_t(host.size()));
  }
  std::vector<T> download() const {
    std::vector<T> host(static_cast<std::size_t>(size_));
    if (size_ > 0)
      check_cuda(cudaMemcpy(host.data(), data_, std::size_t(size_) * sizeof(T), cudaMemcpyDeviceToHost),
                 "download");
    return host;
  }

 private:
  void release() noexcept {
    if (data_) cudaFree(data_);  // cannot throw from a destructor; a failed free leaks nothing usable
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  index_t size_ = 0;
};

// Stream-ordered scratch memory for one launch (cudaMallocAsync; freed in stream order).
template <class T>
class scratch_buffer {
 public:
  scratch_buffer(index_t n, cudaStream_t stream) : stream_(stream) {
    if (n > 0)
      check_cuda(cudaMallocAsync(reinterpret_cast<void**>(&data_), std::size_t(n) * sizeof(T), stream),
                 "cudaMallocAsync");
  }
  scratch_buffer(const scratch_buffer&) = delete;
  scratch_buffer& operator=(const scratch_buffer&) = delete;
  ~scratch_buffer() {
    if (data_) cudaFreeAsync(data_, stream_);
  }
  T* data() const { return data_; }

 private:
  T* data_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace qtx::cuda
