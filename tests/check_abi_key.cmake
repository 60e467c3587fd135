cmake_minimum_required(VERSION 3.21)
# Lint for the ISA key (include/qtx/config.hpp): every header that opens a qtx namespace opens the
# keyed one, `namespace qtx::QTX_ABI...`, and includes config.hpp itself, since a header that
# reached QTX_ABI undefined would silently declare a plain namespace named QTX_ABI. Only the
# shared vocabulary (error, views, element types, ISA levels, the dispatcher) opens `namespace qtx {` unkeyed.
# Usage: cmake -DQTX_INCLUDE_DIR=<repo>/include -P check_abi_key.cmake
set(shared_headers core/error.hpp core/view.hpp core/types.hpp core/isa.hpp dispatch.hpp)
get_filename_component(QTX_INCLUDE_DIR "${QTX_INCLUDE_DIR}" ABSOLUTE)
file(GLOB_RECURSE headers RELATIVE "${QTX_INCLUDE_DIR}/qtx" "${QTX_INCLUDE_DIR}/qtx/*.hpp" "${QTX_INCLUDE_DIR}/qtx/*.cuh")
set(problems "")
foreach(header IN LISTS headers)
  file(READ "${QTX_INCLUDE_DIR}/qtx/${header}" text)
  string(REGEX MATCHALL "\nnamespace qtx[^\n{]*" openings "${text}")
  foreach(opening IN LISTS openings)
    if(NOT opening MATCHES "^\nnamespace qtx::QTX_ABI" AND NOT header IN_LIST shared_headers)
      string(STRIP "${opening}" opening)
      list(APPEND problems "${header}: '${opening}' is not ISA-keyed (write namespace qtx::QTX_ABI...)")
    endif()
  endforeach()
  if(text MATCHES "namespace [a-z_:]*QTX_ABI" AND NOT header STREQUAL "config.hpp" AND NOT text MATCHES "#include \"[./]*config.hpp\"")
    list(APPEND problems "${header}: uses QTX_ABI without including config.hpp")
  endif()
endforeach()
list(LENGTH headers count)
if(problems)
  list(JOIN problems "\n  " report)
  message(FATAL_ERROR "ISA key lint:\n  ${report}")
endif()
message(STATUS "ISA key lint: ${count} headers checked")
