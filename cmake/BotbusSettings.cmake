# Compiler settings live on INTERFACE targets that each botbus target links
# privately; nothing here touches global flags or include paths.

add_library(botbus_settings INTERFACE)
target_compile_features(botbus_settings INTERFACE cxx_std_20)
set(CMAKE_CXX_EXTENSIONS OFF)

add_library(botbus_warnings INTERFACE)
target_compile_options(botbus_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Wconversion -Wsign-conversion
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough
  $<$<BOOL:${BOTBUS_WERROR}>:-Werror>)

if(BOTBUS_SANITIZE)
  # GCC's -Wmaybe-uninitialized misfires on std::optional members once the
  # sanitizers' instrumentation is inlined; the regular build keeps it.
  target_compile_options(botbus_settings INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
    $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
  target_link_options(botbus_settings INTERFACE -fsanitize=address,undefined)
endif()

if(BOTBUS_COVERAGE)
  # gcov counts for scripts/coverage.sh; no optimisation, so lines map 1:1.
  target_compile_options(botbus_settings INTERFACE --coverage -O0 -g)
  target_link_options(botbus_settings INTERFACE --coverage)
endif()
