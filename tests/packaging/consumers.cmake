# The consumer programs of every packaging project, each a test of that project's own ctest:
#   kernels     links qtx::qtx alone, which must bring neither Eigen nor nlohmann-json;
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

add_executable(kernels ${CMAKE_CURRENT_LIST_DIR}/kernels.cpp)
target_link_libraries(kernels PRIVATE qtx::qtx)
add_test(NAME kernels COMMAND kernels)

if(QTX_CONSUMER_COMPONENTS)
  add_executable(components ${CMAKE_CURRENT_LIST_DIR}/components.cpp)
  target_link_libraries(components PRIVATE qtx::io qtx::eigen)
  add_test(NAME components COMMAND components)
else()
  foreach(target qtx::io qtx::eigen nlohmann_json::nlohmann_json Eigen3::Eigen)
    if(TARGET ${target})
      message(FATAL_ERROR "${target} exists though this consumer asked for no qtx component")
    endif()
  endforeach()
endif()
