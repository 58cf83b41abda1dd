# BOTBUS_TSAN: ThreadSanitizer on every botbus target (scripts/tsan.sh).
# Best with clang; GCC's TSan works too but is slower to build against.
# The libraries botbus links (libzmq, SQLite, spdlog) are not instrumented:
# TSan sees only botbus's own memory accesses plus the synchronisation it
# intercepts (pthread, atomics in botbus's code).
if(NOT BOTBUS_TSAN)
  return()
endif()
if(BOTBUS_SANITIZE)
  message(FATAL_ERROR "BOTBUS_TSAN and BOTBUS_SANITIZE cannot be combined (ThreadSanitizer excludes ASan)")
endif()
target_compile_options(botbus_settings INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
target_link_options(botbus_settings INTERFACE -fsanitize=thread)
