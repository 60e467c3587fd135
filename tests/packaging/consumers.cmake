# The consumer programs of every packaging project, each a test of that project's own ctest:
#   kernels     links qtx::qtx alone, which must bring neither Eigen nor nlohmann-json;
#   kernels_dispatch  qtx_add_dispatch: a baseline main() and per-ISA kernels, best one at run time;
#   components  links qtx::io and qtx::eigen; built when QTX_CONSUMER_COMPONENTS is not empty.
# With QTX_CONSUMER_COMPONENTS empty, no component and none of their packages may exist at all.
# Included once qtx's targets exist (find_package, add_subdirectory or FetchContent).
enable_testing()
foreach(target test_core bench_gemm qtx_catch_main)
  if(TARGET ${target})
    message(FATAL_ERROR "qtx leaked its own target ${target} into a parent project")
  endif()
endforeach()
get_target_property(qtx_kernel_links qtx::qtx INTERFACE_LINK_LIBRARIES)
if(qtx_kernel_links MATCHES "Eigen|nlohmann")
  message(FATAL_ERROR "qtx::qtx links ${qtx_kernel_links}; the kernels need only xsimd (+ OpenMP)")
endif()

# A user's build sees no warning from qtx's headers: the consumers compile with -Wall -Wextra
# -Werror, once for the compiler's default target and once with -march=native (AVX-512 or AVX2
# kernels where the machine has them; it runs here, so its own ISA is safe).
set(qtx_consumer_warnings -Wall -Wextra -Werror)
add_executable(kernels ${CMAKE_CURRENT_LIST_DIR}/kernels.cpp)
target_link_libraries(kernels PRIVATE qtx::qtx)
target_compile_options(kernels PRIVATE ${qtx_consumer_warnings})
add_test(NAME kernels COMMAND kernels)
add_executable(kernels_native ${CMAKE_CURRENT_LIST_DIR}/kernels.cpp)
target_link_libraries(kernels_native PRIVATE qtx::qtx)
target_compile_options(kernels_native PRIVATE ${qtx_consumer_warnings} -march=native)
add_test(NAME kernels_native COMMAND kernels_native)

# Run-time dispatch as a user sets it up: qtx_add_dispatch comes with qtx (find_package,
# add_subdirectory and FetchContent alike); two ISAs keep the packaging tests short.
add_executable(kernels_dispatch ${CMAKE_CURRENT_LIST_DIR}/dispatch_main.cpp)
target_compile_options(kernels_dispatch PRIVATE ${qtx_consumer_warnings})
qtx_add_dispatch(kernels_dispatch SOURCES ${CMAKE_CURRENT_LIST_DIR}/dispatch_kernels.cpp LINK qtx::qtx
                 ISAS scalar avx2)
target_compile_options(kernels_dispatch_qtx_scalar PRIVATE ${qtx_consumer_warnings})
target_compile_options(kernels_dispatch_qtx_avx2 PRIVATE ${qtx_consumer_warnings})
add_test(NAME kernels_dispatch COMMAND kernels_dispatch)

if(QTX_CONSUMER_COMPONENTS)
  add_executable(components ${CMAKE_CURRENT_LIST_DIR}/components.cpp)
  target_link_libraries(components PRIVATE qtx::io qtx::eigen)
  # Default target only: with AVX-512, Eigen's own GEMM (its x*w check) warns under GCC 12.
  target_compile_options(components PRIVATE ${qtx_consumer_warnings})
  add_test(NAME components COMMAND components)
else()
  foreach(target qtx::io qtx::eigen nlohmann_json::nlohmann_json Eigen3::Eigen)
    if(TARGET ${target})
      message(FATAL_ERROR "${target} exists though this consumer asked for no qtx component")
    endif()
  endforeach()
endif()
