# Runs `systemd-analyze verify` on a copy of the unit whose ExecStart is the built daemon
# (verify checks that the command exists); man pages named by Documentation= are only
# there once installed, so they are not looked up. Fails on any finding.
# cmake -DUNIT=... -DDAEMON=... -DOUT=dir -DANALYZE=systemd-analyze -P verify_unit.cmake
file(READ "${UNIT}" unit)
string(REPLACE "ExecStart=/usr/local/sbin/agenthostd " "ExecStart=${DAEMON} " unit "${unit}")
file(MAKE_DIRECTORY "${OUT}")
file(WRITE "${OUT}/agenthostd.service" "${unit}")
execute_process(COMMAND "${ANALYZE}" verify --man=no "${OUT}/agenthostd.service"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT "${out}${err}" STREQUAL "")
  message(FATAL_ERROR "systemd-analyze verify (exit ${rc}):\n${out}${err}")
endif()
message(STATUS "systemd-analyze verify: no findings")
