cmake_minimum_required(VERSION 3.21)
# Runs Doxygen and fails when it wrote any warning (WARN_LOGFILE): an undocumented public entity,
# a broken @param, an unknown command. cmake -DDOXYGEN=... -DDOXYFILE=... -DWARNINGS=... -P this
file(REMOVE ${WARNINGS})
execute_process(COMMAND ${DOXYGEN} ${DOXYFILE} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "doxygen failed (exit ${result})")
endif()
file(READ ${WARNINGS} warnings)
if(NOT warnings STREQUAL "")
  string(REGEX MATCHALL "\n" lines "\n${warnings}")
  list(LENGTH lines count)
  message(FATAL_ERROR "doxygen: about ${count} warning lines (public entities need a doc comment):\n"
                      "${warnings}")
endif()
message(STATUS "doxygen: no warnings")
