# SPDX-License-Identifier: Apache-2.0
# Builds one CO-RE BPF object and its libbpf skeleton into the build tree.
#
#   aurum_bpf_skeleton(<name>)   reads bpf/<name>.bpf.c, writes
#     ${AURUM_BPF_OUT}/<name>.bpf.o and ${AURUM_BPF_OUT}/<name>.skel.h
#
# A function, not a macro, so that its variables do not leak into the caller.

find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

# The one place that maps the host processor to the kernel's arch name used by bpf_tracing.h.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(AURUM_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(AURUM_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "aurum: unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(AURUM_BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${AURUM_BPF_OUT})
option(AURUM_BPF_DEBUG "compile bpf_printk() calls in (see bpf/common.bpf.h)" OFF)

function(aurum_bpf_skeleton name)
  set(src ${CMAKE_SOURCE_DIR}/bpf/${name}.bpf.c)
  set(obj ${AURUM_BPF_OUT}/${name}.bpf.o)
  set(skel ${AURUM_BPF_OUT}/${name}.skel.h)
  set(flags -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${AURUM_BPF_ARCH}
      -I${CMAKE_SOURCE_DIR}/vmlinux -I${CMAKE_SOURCE_DIR}/bpf -I${CMAKE_SOURCE_DIR})
  if(AURUM_BPF_DEBUG)
    list(APPEND flags -DAURUM_BPF_DEBUG=1)
  endif()
  file(GLOB headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/*.h ${CMAKE_SOURCE_DIR}/bpf/proto/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} ${flags} -c ${src} -o ${obj}
    DEPENDS ${src} ${headers}
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(bpf_${name} DEPENDS ${skel})
endfunction()
