// A program outside qtx that links qtx::qtx alone: quantizes two small matrices and runs the int8
// GEMM through the public API, then checks one value by hand. The kernels must bring neither
// nlohmann-json nor Eigen (they are the io and eigen components' dependencies).
#include <qtx/qtx.hpp>

#ifdef NLOHMANN_JSON_VERSION_MAJOR
#error "qtx/qtx.hpp includes nlohmann-json"
#endif
#ifdef EIGEN_WORLD_VERSION
#error "qtx/qtx.hpp includes Eigen"
#endif
// Debian installs Eigen under /usr/include/eigen3, reachable only through Eigen3::Eigen's include
// directory: visible here means qtx::qtx links Eigen.
#if __has_include(<Eigen/Core>)
#error "Eigen is on the include path of a qtx::qtx consumer"
#endif

#include <cstdio>
#include <vector>

int main() {
  const std::vector<float> a = {0.5f, -1.0f, 2.0f, 0.0f};  // (2,2)
  const std::vector<int8_t> b = {2, 0, 0, 3};              // (2,2) = diag(2, 3)
  const qtx::quant_params qa = qtx::asymmetric_params<uint8_t>(-1.0f, 2.0f);
  std::vector<uint8_t> a_q(a.size());
  qtx::quantize<uint8_t>(a, a_q, qa);
  std::vector<int32_t> c(4);
  qtx::ops::gemm(qtx::cpu::native{}, qtx::make_view(a_q.data(), 2, 2),
                 qtx::ops::pack_b<qtx::cpu::native>(qtx::make_view(b.data(), 2, 2)),
                 qtx::make_view(c.data(), 2, 2), qtx::epilogue::make_pipeline(), qa.zero_point);
  // c(1,0) = (a_q(1,0) − zp) · 2 = round(2 / scale) · 2
  const int32_t expected = qtx::round_half_even(2.0f * qa.inv_scale()) * 2;
  std::printf("qtx %d.%d.%d (%s): c(1,0) = %d, expected %d\n", QTX_VERSION_MAJOR, QTX_VERSION_MINOR,
              QTX_VERSION_PATCH, qtx::cpu::native::name(), c[2], expected);
  return c[2] == expected ? 0 : 1;
}
