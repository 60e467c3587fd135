// A program outside qtx that links the io and eigen components: writes a small safetensors file,
// reads it back, maps its weight matrix as an Eigen matrix and multiplies an Eigen activation by it
// with qtx's float GEMM, then checks the product against Eigen's own. Small integers keep every
// product and sum exact in float, so the two must agree exactly.
#include <qtx/core/eigen.hpp>
#include <qtx/io.hpp>
#include <qtx/qtx.hpp>

#include <Eigen/Core>

#include <cstdio>
#include <span>
#include <vector>

int main() {
  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const std::vector<float> w = {1, -2, 3, 0, -1, 4};  // (3, 2)
  const char* path = "qtx_components.safetensors";    // in the consumer's build folder
  const qtx::io::tensor_data tensors[] = {
      qtx::io::make_tensor_data("w", std::span<const float>(w), {3, 2})};
  qtx::io::write_safetensors(path, tensors, {{"written_by", "qtx packaging test"}});

  const auto file = qtx::io::safetensors_file::open(path);
  const Eigen::Map<const row_major> w_read(file.values<float>("w").data(), 3, 2);
  Eigen::MatrixXf x(2, 3);  // column-major: the view carries Eigen's strides
  x << 2, 1, -1, 0, 3, 5;
  Eigen::MatrixXf y(2, 2);
  using arch = qtx::cpu::native;
  qtx::ops::gemm(arch{}, qtx::view_of(x), qtx::ops::pack_b<arch>(qtx::view_of(w_read)),
                 qtx::view_of(y));

  const Eigen::MatrixXf expected = x * w_read;
  const bool metadata_ok = file.metadata().at("written_by") == "qtx packaging test";
  std::printf("qtx %d.%d.%d (%s): y = [%g %g; %g %g], Eigen's x*w = [%g %g; %g %g], metadata %s\n",
              QTX_VERSION_MAJOR, QTX_VERSION_MINOR, QTX_VERSION_PATCH, arch::name(), y(0, 0),
              y(0, 1), y(1, 0), y(1, 1), expected(0, 0), expected(0, 1), expected(1, 0),
              expected(1, 1), metadata_ok ? "read back" : "WRONG");
  return y == expected && metadata_ok ? 0 : 1;
}
