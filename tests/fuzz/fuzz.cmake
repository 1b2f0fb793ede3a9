# tests/fuzz/fuzz.cmake - the fuzz targets in the main build (docs/fuzzing.md):
#
#  1. always (with the tests): fuzz_replay_<target>, each target linked with
#     replay.c and the library by the build's own compiler (and sanitizers),
#     and a ctest entry running it over tests/fuzz/corpus/<target> and
#     tests/fuzz/regressions/<target>: every kept input is replayed in every
#     build. fuzz_make_corpus (not built by default) writes the seeds.
#  2. MYTORCH_FUZZ (default ON when a clang that links -fsanitize=fuzzer is
#     found): the libFuzzer programs, built by that clang as the separate
#     project tests/fuzz/CMakeLists.txt into <build>/fuzz.
file(GLOB MYTORCH_FUZZ_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.c)
set(fuzz_dir ${CMAKE_CURRENT_LIST_DIR})

if(TARGET mytorch_tests)
  foreach(src ${MYTORCH_FUZZ_SOURCES})
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "^fuzz_" "" target ${name})
    add_executable(fuzz_replay_${target} ${src} ${fuzz_dir}/replay.c)
    target_link_libraries(fuzz_replay_${target} PRIVATE mytorch_static)
    set(seeds ${fuzz_dir}/corpus/${target} ${fuzz_dir}/regressions/${target})
    if(target STREQUAL "npy")
      list(APPEND seeds ${CMAKE_SOURCE_DIR}/tests/fixtures/npy)
    endif()
    add_test(NAME fuzz_replay_${target} COMMAND fuzz_replay_${target} ${seeds})
    set_tests_properties(fuzz_replay_${target} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
  endforeach()
  add_executable(fuzz_make_corpus EXCLUDE_FROM_ALL ${fuzz_dir}/make_corpus.c)
  target_link_libraries(fuzz_make_corpus PRIVATE mytorch_static)
endif()

if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
  set(MYTORCH_FUZZ_CLANG ${CMAKE_C_COMPILER})
else()
  find_program(MYTORCH_FUZZ_CLANG NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14)
endif()
set(fuzz_default OFF)
if(MYTORCH_FUZZ_CLANG)
  # libFuzzer's runtime is a separate package on some systems (libclang-rt-*-dev)
  set(probe ${CMAKE_BINARY_DIR}/fuzz_probe.c)
  file(WRITE ${probe} "#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n")
  execute_process(COMMAND ${MYTORCH_FUZZ_CLANG} -fsanitize=fuzzer,address,undefined ${probe} -o ${CMAKE_BINARY_DIR}/fuzz_probe
                  RESULT_VARIABLE probe_rc OUTPUT_QUIET ERROR_QUIET)
  if(probe_rc EQUAL 0)
    set(fuzz_default ON)
  else()
    message(STATUS "mytorch: ${MYTORCH_FUZZ_CLANG} cannot link -fsanitize=fuzzer (apt-get install libclang-rt-dev): no fuzz targets")
  endif()
endif()
option(MYTORCH_FUZZ "Build the libFuzzer targets of tests/fuzz with clang (docs/fuzzing.md)" ${fuzz_default})
if(MYTORCH_FUZZ)
  if(NOT MYTORCH_FUZZ_CLANG)
    message(FATAL_ERROR "MYTORCH_FUZZ=ON but no clang was found")
  endif()
  include(ExternalProject)
  ExternalProject_Add(mytorch_fuzz
    SOURCE_DIR ${fuzz_dir}
    BINARY_DIR ${CMAKE_BINARY_DIR}/fuzz
    CMAKE_ARGS -DCMAKE_C_COMPILER=${MYTORCH_FUZZ_CLANG} -DCMAKE_BUILD_TYPE=RelWithDebInfo
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON)   # its own make decides what is out of date
  message(STATUS "mytorch: fuzz targets ON (${MYTORCH_FUZZ_CLANG}, into ${CMAKE_BINARY_DIR}/fuzz)")
endif()
