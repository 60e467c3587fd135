# What each part of qtx needs. Used by qtx's own build (CMakeLists.txt) and by the installed
# qtxConfig.cmake, so a consumer finds exactly the packages, and links exactly the targets, that
# qtx was built with:
#   kernels  qtx::qtx     xsimd; OpenMP when qtx_WITH_OPENMP (the build's QTX_WITH_OPENMP)
#   io       qtx::io      nlohmann_json 3 (the safetensors reader and writer parse JSON)
#   eigen    qtx::eigen   Eigen3 3.3
set(qtx_components io eigen)

# Debian's xsimd 8.1 config links an `xtl` target that the package does not provide (xsimd only
# needs xtl for optional complex-number support). An empty INTERFACE stand-in satisfies it.
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED)
endif()

# qtx_find_dependencies(<part> <REQUIRED|QUIET>): finds the packages <part> needs and sets
# qtx_<part>_link (the targets to link) and qtx_<part>_missing (the packages not found; with
# REQUIRED, CMake stops at the first one instead). A macro: the packages' own result variables
# stay visible to the caller, as with find_package.
macro(qtx_find_dependencies part mode)
  set(qtx_${part}_link "")
  set(qtx_${part}_missing "")
  if("${part}" STREQUAL "kernels")
    _qtx_find_package(${part} ${mode} xsimd "" xsimd CONFIG)
    if(qtx_WITH_OPENMP)
      _qtx_find_package(${part} ${mode} OpenMP "" OpenMP::OpenMP_CXX)
    endif()
  elseif("${part}" STREQUAL "io")
    _qtx_find_package(${part} ${mode} nlohmann_json 3 nlohmann_json::nlohmann_json CONFIG)
  elseif("${part}" STREQUAL "eigen")
    _qtx_find_package(${part} ${mode} Eigen3 3.3 Eigen3::Eigen CONFIG)
  else()
    message(FATAL_ERROR "qtx_find_dependencies: unknown part '${part}'")
  endif()
endmacro()

# One package of a part: find_package(<package> [<version>] <mode> [CONFIG]), then record it.
macro(_qtx_find_package part mode package version target)
  find_package(${package} ${version} ${mode} ${ARGN})
  if(${package}_FOUND)
    list(APPEND qtx_${part}_link ${target})
  else()
    string(STRIP "${package} ${version}" _qtx_missing_package)
    list(APPEND qtx_${part}_missing "${_qtx_missing_package}")
  endif()
endmacro()
