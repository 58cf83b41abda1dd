# BOTBUS_FUZZ: every botbus target is compiled with libFuzzer's coverage
# instrumentation and ASan + UBSan, so the fuzz targets (fuzz/) see the
# branches of the code they drive. clang only: GCC has no libFuzzer.
if(NOT BOTBUS_FUZZ)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "BOTBUS_FUZZ=ON needs clang (e.g. -DCMAKE_CXX_COMPILER=clang++-14); "
                      "the compiler is ${CMAKE_CXX_COMPILER_ID}")
endif()
if(BOTBUS_SANITIZE OR BOTBUS_TSAN)
  message(FATAL_ERROR "BOTBUS_FUZZ brings its own sanitizers; leave BOTBUS_SANITIZE and BOTBUS_TSAN off")
endif()
# fuzzer-no-link: coverage counters without libFuzzer's main; the fuzz
# targets link -fsanitize=fuzzer themselves.
target_compile_options(botbus_settings INTERFACE
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
target_link_options(botbus_settings INTERFACE -fsanitize=address,undefined)
