#pragma once
// Which CPU backends a kernel test sweeps: the tags this binary was compiled for (a tag above the
// build's ISA flags does not compile; test_core lists those with a visible warning), and of those,
// skipping the ones this CPU cannot run (with a visible warning, never silently).
#include <tuple>
#include <type_traits>
#include <utility>

#include <catch2/catch.hpp>

#include <qtx/core/arch.hpp>

namespace test_backends {

template <class Tags>
struct compiled_filter;
template <class... Tags>
struct compiled_filter<std::tuple<Tags...>> {
  using type = decltype(std::tuple_cat(
      std::declval<std::conditional_t<Tags::compiled, std::tuple<Tags>, std::tuple<>>>()...));
};
/// The tags of Tags (a std::tuple) that this translation unit can compile.
template <class Tags>
using compiled = typename compiled_filter<Tags>::type;

/// Every CPU backend tag, lowest first.
using all_cpu = std::tuple<qtx::cpu::scalar, qtx::cpu::avx2, qtx::cpu::avx_vnni, qtx::cpu::avx512_vnni>;

/// Calls body.template operator()<Tag>() for each compiled tag of Tags.
template <class Tags, class Body>
void for_each_compiled(Body&& body) {
  std::apply([&](auto... tags) { (body.template operator()<decltype(tags)>(), ...); }, compiled<Tags>{});
}

/// True (and a warning) when the CPU lacks Arch's instructions.
template <class Arch>
bool skip_unsupported() {
  if (qtx::cpu::supported<Arch>()) return false;
  WARN("CPU lacks " << Arch::name() << ": skipped");
  return true;
}

}  // namespace test_backends
