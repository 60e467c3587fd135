#pragma once
// Shared helpers of the CUDA tests: skip without a GPU, host ↔ device copies, random data.
//
// Every CUDA test program includes this header first. Its static initializer runs before Catch's
// main and exits with 77 (ctest SKIP_RETURN_CODE) when the CUDA runtime reports no usable device,
// so the shared Catch main needs no change.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <qtx/core/view.hpp>
#include <qtx/cuda/runtime.cuh>

namespace qtx_test {

inline constexpr int skip_exit_code = 77;

inline const bool gpu_present = [] {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    std::fprintf(stderr, "qtx cuda tests: no CUDA device (%s): skipped\n",
                 status == cudaSuccess ? "0 devices" : cudaGetErrorString(status));
    std::exit(skip_exit_code);
  }
  return true;
}();

template <class T>
qtx::cuda::device_buffer<T> to_device(const std::vector<T>& host) {
  qtx::cuda::device_buffer<T> d;
  d.upload(host);
  return d;
}

inline void sync() { qtx::cuda::check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

template <class T>
std::vector<T> random_ints(std::size_t n, int lo, int hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

inline std::vector<float> random_floats(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace qtx_test
