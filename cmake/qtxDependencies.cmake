# Finds qtx's header dependencies. Used by the build tree and by the installed qtxConfig.cmake, so
# consumers get exactly the same targets.
include(CMakeFindDependencyMacro)

# Debian's xsimd 8.1 config links an `xtl` target that the package does not provide (xsimd only
# needs xtl for optional complex-number support). An empty INTERFACE stand-in satisfies it.
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED)
endif()
find_dependency(xsimd)
find_dependency(Eigen3 3.3 NO_MODULE)
find_dependency(nlohmann_json 3)
