# SPDX-License-Identifier: Apache-2.0
# Operating aurum (issue 7), included by tests/CMakeLists.txt.
#   label operate     offline checks of deploy/, dashboards/, alerting/ (seconds each; the first run
#                     on a fresh machine installs promtool, amtool, node, docker-compose: operate.setup)
#   label privileged  operate.capabilities: the agent attaches holding only the capabilities that
#                     deploy/ grants (root)
#   label e2e         operate.e2e: the testbed up, a real Prometheus scraping aurum with alerting/,
#                     every dashboard and recording-rule expression returns data, the 5xx alert
#                     reaches a webhook and resolves (about 6 minutes, inside the testbed fixture; see e2e.sh)
set(AURUM_OPERATE_DIR ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME operate.setup COMMAND ${AURUM_OPERATE_DIR}/setup.sh)
set_tests_properties(operate.setup PROPERTIES FIXTURES_SETUP aurum_operate_tools LABELS operate TIMEOUT 900)
foreach(check rules rule-tests alerting prometheus alertmanager kubernetes chart dashboards systemd docker)
  add_test(NAME operate.${check} COMMAND ${AURUM_OPERATE_DIR}/check.sh ${check} $<TARGET_FILE:aurum>)
  set_tests_properties(operate.${check} PROPERTIES
    FIXTURES_REQUIRED aurum_operate_tools LABELS operate TIMEOUT 120)
endforeach()
# The checks can fail: mutated copies of the files must make the guarding check fail (about 1 min).
add_test(NAME operate.selftest COMMAND ${AURUM_OPERATE_DIR}/selftest.sh)
set_tests_properties(operate.selftest PROPERTIES
  FIXTURES_REQUIRED aurum_operate_tools LABELS operate TIMEOUT 300)
add_test(NAME operate.capabilities COMMAND ${AURUM_OPERATE_DIR}/check-caps.sh $<TARGET_FILE:aurum>)
set_tests_properties(operate.capabilities PROPERTIES
  FIXTURES_REQUIRED aurum_operate_tools LABELS privileged RUN_SERIAL TRUE TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME operate.e2e COMMAND ${AURUM_OPERATE_DIR}/e2e.sh $<TARGET_FILE:aurum>)
set_tests_properties(operate.e2e PROPERTIES
  FIXTURES_REQUIRED "aurum_operate_tools;testbed" LABELS e2e RUN_SERIAL TRUE TIMEOUT 1800 SKIP_RETURN_CODE 77)
# The end-to-end test loads the testbed with errors and poison messages: the testbed's own exact
# checks run first.
# (DEPENDS only orders: it names tests that tests/testbed/tests.cmake defines after this file.)
set_tests_properties(operate.e2e PROPERTIES DEPENDS "testbed.system;testbed.plan_metrics")
