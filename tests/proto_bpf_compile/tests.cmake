# SPDX-License-Identifier: Apache-2.0
# The pure parsers in bpf/proto/ must build for the BPF target and as host C, and the verifier must
# accept them the way a collector calls them. proto_check.bpf.c is a stand-in program that calls
# every classifier on a bpf_skb_load_bytes()-filled buffer of variable length.
set(_proto_dir ${CMAKE_CURRENT_LIST_DIR})
set(_proto_obj ${CMAKE_BINARY_DIR}/tests/proto_check.bpf.o)
add_test(NAME proto.bpf_compile
  COMMAND ${BPF_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${AURUM_BPF_ARCH}
          -I${CMAKE_SOURCE_DIR}/vmlinux -I${CMAKE_SOURCE_DIR}/bpf -I${CMAKE_SOURCE_DIR}
          -c ${_proto_dir}/proto_check.bpf.c -o ${_proto_obj})
set_tests_properties(proto.bpf_compile PROPERTIES LABELS unit FIXTURES_SETUP proto_bpf_obj)

# Every header in bpf/proto/ (mine and the ones other components add) in one translation unit,
# for both targets: catches a header that is not self-contained or clashes with another.
file(GLOB _proto_headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/proto/*.h)
set(_proto_all_bpf "#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n")
set(_proto_all_host "#include <linux/types.h>\n")
foreach(h ${_proto_headers})
  get_filename_component(hn ${h} NAME)
  string(APPEND _proto_all_bpf "#include \"proto/${hn}\"\n")
  string(APPEND _proto_all_host "#include \"proto/${hn}\"\n")
endforeach()
string(APPEND _proto_all_bpf "char LICENSE[] SEC(\"license\") = \"Dual BSD/GPL\";\n")
file(WRITE ${CMAKE_BINARY_DIR}/tests/proto_all.bpf.c "${_proto_all_bpf}")
file(WRITE ${CMAKE_BINARY_DIR}/tests/proto_all_host.c "${_proto_all_host}")
add_test(NAME proto.all_headers_bpf
  COMMAND ${BPF_CLANG} -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${AURUM_BPF_ARCH}
          -I${CMAKE_SOURCE_DIR}/vmlinux -I${CMAKE_SOURCE_DIR}/bpf -I${CMAKE_SOURCE_DIR}
          -c ${CMAKE_BINARY_DIR}/tests/proto_all.bpf.c -o ${CMAKE_BINARY_DIR}/tests/proto_all.bpf.o)
set_tests_properties(proto.all_headers_bpf PROPERTIES LABELS unit)
add_test(NAME proto.all_headers_host
  COMMAND ${CMAKE_C_COMPILER} -std=c11 -Wall -Wextra -Werror -fsyntax-only -I${CMAKE_SOURCE_DIR}/bpf
          ${CMAKE_BINARY_DIR}/tests/proto_all_host.c)
set_tests_properties(proto.all_headers_host PROPERTIES LABELS unit)

add_test(NAME proto.host_c_compile
  COMMAND ${CMAKE_C_COMPILER} -std=c11 -Wall -Wextra -Werror -I${CMAKE_SOURCE_DIR}/bpf
          ${_proto_dir}/proto_host_check.c -o ${CMAKE_BINARY_DIR}/tests/proto_host_check)
set_tests_properties(proto.host_c_compile PROPERTIES LABELS unit)

# Loading needs CAP_BPF: privileged tier (runs in CI, skipped without root elsewhere). bpftool loads
# the program (the verifier runs) and pins it under a unique name that is removed again.
add_test(NAME proto.bpf_verifier
  COMMAND sh -c "if [ \"$(id -u)\" != 0 ] && [ \"$CI\" != true ]; then echo 'skip: loading needs root'; exit 77; fi; pin=/sys/fs/bpf/aurum_proto_check_$$; ${BPFTOOL} prog load ${_proto_obj} $pin || exit 1; rm -f $pin")
set_tests_properties(proto.bpf_verifier PROPERTIES LABELS privileged RUN_SERIAL TRUE
                     SKIP_RETURN_CODE 77 FIXTURES_REQUIRED proto_bpf_obj)
