# Runs PROGRAM with ARGUMENTS ("|"-separated) and checks its exit status is EXPECTED_STATUS and its
# stdout + stderr match the regular expression EXPECTED_OUTPUT.
#   cmake -DPROGRAM=… -DARGUMENTS=a|b -DEXPECTED_STATUS=2 -DEXPECTED_OUTPUT=regex -P check_command_line.cmake
string(REPLACE "|" ";" arguments "${ARGUMENTS}")
execute_process(COMMAND "${PROGRAM}" ${arguments} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(output "${out}${err}")
if(NOT "${status}" STREQUAL "${EXPECTED_STATUS}")
  message(FATAL_ERROR "${PROGRAM} ${arguments}: exit status ${status}, expected ${EXPECTED_STATUS}; output:\n${output}")
endif()
if(NOT output MATCHES "${EXPECTED_OUTPUT}")
  message(FATAL_ERROR "${PROGRAM} ${arguments}: output does not match '${EXPECTED_OUTPUT}':\n${output}")
endif()
message(STATUS "${PROGRAM} ${arguments}: status ${status}, output matches '${EXPECTED_OUTPUT}'")
