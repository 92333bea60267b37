# SPDX-License-Identifier: Apache-2.0
# The S3 collector against a real S3-compatible server from npm (@20minutes/s3rver), on
# loopback. `npm ci` (a ctest fixture) installs it into tests/s3/node_modules from the
# committed lock file; node and npm come from the system.
file(GLOB AURUM_S3_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_executable(aurum_s3_tests ${AURUM_S3_TEST_SOURCES})
target_link_libraries(aurum_s3_tests PRIVATE aurum_core GTest::gtest GTest::gtest_main)
target_compile_definitions(aurum_s3_tests PRIVATE AURUM_S3_TEST_DIR="${CMAKE_CURRENT_LIST_DIR}")

add_test(NAME s3_npm_ci
         COMMAND npm ci --no-audit --no-fund --prefer-offline
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(s3_npm_ci PROPERTIES LABELS s3 FIXTURES_SETUP aurum_s3_server TIMEOUT 300)
gtest_discover_tests(aurum_s3_tests
  PROPERTIES LABELS s3 FIXTURES_REQUIRED aurum_s3_server TIMEOUT 60 DISCOVERY_TIMEOUT 60)
