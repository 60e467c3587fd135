#pragma once
/// @file
/// Views of Eigen matrices, Maps and Refs (row- or column-major), so Eigen users call qtx directly:
///   Eigen::MatrixXf w(768, 768);  qtx::ops::gemm(tag, qtx::view_of(x), qtx::view_of(w), ...)
/// Kept apart from core/view.hpp so that qtx itself never needs Eigen.
#include <Eigen/Core>

#include "view.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// A mutable qtx view of an Eigen matrix, Map, Ref or Block, with Eigen's strides (column-major by
/// default): no copy, so qtx writes straight into Eigen storage.
template <class Derived>
auto view_of(Eigen::DenseBase<Derived>& m) {
  using scalar = typename Derived::Scalar;
  static_assert(static_cast<bool>(Eigen::internal::traits<Derived>::Flags & Eigen::DirectAccessBit),
                "view_of needs an Eigen expression with direct access (Matrix, Map, Ref, Block)");
  return matrix_view<scalar>(m.derived().data(), m.rows(), m.cols(), m.derived().rowStride(),
                             m.derived().colStride());
}

/// A read-only qtx view of an Eigen matrix, Map, Ref or Block (for inputs such as weights).
template <class Derived>
auto view_of(const Eigen::DenseBase<Derived>& m) {
  using scalar = typename Derived::Scalar;
  static_assert(static_cast<bool>(Eigen::internal::traits<Derived>::Flags & Eigen::DirectAccessBit),
                "view_of needs an Eigen expression with direct access (Matrix, Map, Ref, Block)");
  return matrix_view<const scalar>(m.derived().data(), m.rows(), m.cols(), m.derived().rowStride(),
                                   m.derived().colStride());
}

/// Eigen::Map temporaries (view_of(Eigen::Map<...>(p, r, c))) bind here.
template <class Derived>
auto view_of(Eigen::DenseBase<Derived>&& m) {
  return view_of(static_cast<Eigen::DenseBase<Derived>&>(m));
}

}  // namespace qtx
