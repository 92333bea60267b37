# SPDX-License-Identifier: Apache-2.0
# The S3 collector against a real S3-compatible server from npm (@20minutes/s3rver), on
# loopback. `npm ci` (a ctest fixture) installs it into tests/s3/node_modules from the
# committed lock file; node and npm come from the system.
file(GLOB AURUM_S3_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_executable(aurum_s3_tests ${AURUM_S3_TEST_SOURCES})
target_link_libraries(aurum_s3_tests PRIVATE aurum_core GTest::gtest GTest::gtest_main)
target_compile_definitions(aurum_s3_tests PRIVATE AURUM_S3_TEST_DIR="${CMAKE_CURRENT_LIST_DIR}")

# npm ci wipes node_modules first; skip it when the install is newer than the lock file.
add_test(NAME s3_npm_ci
         COMMAND sh -c "[ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --prefer-offline"
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(s3_npm_ci PROPERTIES LABELS s3 FIXTURES_SETUP aurum_s3_server TIMEOUT 300)
# One ctest entry for the whole binary: the server (node start-up, 1,237 objects) is then
# set up once for every case instead of once per case.
add_test(NAME s3_collector_vs_s3rver COMMAND aurum_s3_tests)
set_tests_properties(s3_collector_vs_s3rver PROPERTIES
  LABELS s3 FIXTURES_REQUIRED aurum_s3_server TIMEOUT 120)
