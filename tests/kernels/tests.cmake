# SPDX-License-Identifier: Apache-2.0
# The kernel matrix (issue 8), label `kernels`: one fixture fetches the pinned kernels and builds the
# initramfs, then one test per kernel boots it under QEMU, and one runs the same suite on the host.
# Needs root (BPF, QEMU as root is fine). Run alone: ctest -L kernels.
set(AURUM_KMX ${CMAKE_SOURCE_DIR}/scripts/kernel-matrix.sh)
set(AURUM_KMX_OUT ${CMAKE_BINARY_DIR}/kernel-matrix)
add_test(NAME kernels.prepare
  COMMAND ${AURUM_KMX} --prepare-only --agent $<TARGET_FILE:aurum> --out ${AURUM_KMX_OUT})
set_tests_properties(kernels.prepare PROPERTIES LABELS kernels FIXTURES_SETUP kmx TIMEOUT 600)
file(STRINGS ${CMAKE_CURRENT_LIST_DIR}/kernels.txt AURUM_KMX_LINES REGEX "^[0-9]")
foreach(line ${AURUM_KMX_LINES})
  string(REGEX MATCH "^[^ \t]+" kid "${line}")
  add_test(NAME kernels.${kid}
    COMMAND ${AURUM_KMX} --kernels ${kid} --reuse-initramfs --agent $<TARGET_FILE:aurum>
            --out ${AURUM_KMX_OUT})
  set_tests_properties(kernels.${kid} PROPERTIES LABELS kernels FIXTURES_REQUIRED kmx
    RUN_SERIAL TRUE TIMEOUT 420)
endforeach()
add_test(NAME kernels.host
  COMMAND ${AURUM_KMX} --kernels host --agent $<TARGET_FILE:aurum> --out ${AURUM_KMX_OUT})
set_tests_properties(kernels.host PROPERTIES LABELS kernels RUN_SERIAL TRUE TIMEOUT 300)
# The judge itself, on canned console logs: no root, no QEMU, a fraction of a second.
add_test(NAME kernels.judge COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_matrix.py)
set_tests_properties(kernels.judge PROPERTIES LABELS "kernels;unit" TIMEOUT 60)
