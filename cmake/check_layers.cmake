# Enforces the direction of dependencies between the rooms of the code
# (docs/ARCHITECTURE.md): every #include of a source file under ROOT must be
# allowed for the layer the file belongs to. Run as a test:
#   cmake -DROOT=<source dir> -P cmake/check_layers.cmake
# Exits non-zero, naming file:line and the rule broken, on any violation.
#
# Each layer: a path regex selecting its files, the project folders it may
# include from, and the system headers it must not include. A file takes the
# first layer whose regex matches its path (relative to ROOT).

if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source dir> -P check_layers.cmake")
endif()

# layer(NAME FILE_REGEX ALLOW <project include prefixes...> [DENY <project include regex>]
#       FORBID <system include regex>)
set(layer_names "")
macro(layer name file_regex)
  cmake_parse_arguments(L "" "FORBID;DENY" "ALLOW" ${ARGN})
  list(APPEND layer_names ${name})
  set(layer_${name}_files "${file_regex}")
  set(layer_${name}_allow "${L_ALLOW}")
  set(layer_${name}_forbid "${L_FORBID}")
  set(layer_${name}_deny "${L_DENY}")
endmacro()

layer(protocol "^bus/protocol/" ALLOW bus/protocol/
      FORBID "^(zmq|boost/|SQLiteCpp/|sqlite3|spdlog/|nlohmann/)")
layer(core "^bus/core/" ALLOW bus/protocol/ bus/core/ store/ DENY "^store/(sqlite|postgresql)/"
      FORBID "^(zmq|boost/asio|SQLiteCpp/|sqlite3|libpq|pqxx/)")
layer(server "^bus/server/" ALLOW bus/protocol/ bus/core/ bus/server/ store/ DENY "^store/(sqlite|postgresql)/"
      FORBID "^(SQLiteCpp/|sqlite3|libpq|pqxx/)")
layer(store_sqlite "^store/sqlite/" ALLOW store/ migrations/ DENY "^store/postgresql/"
      FORBID "^(zmq|boost/asio|libpq|pqxx/)")
layer(store_postgresql "^store/postgresql/" ALLOW store/ migrations/ DENY "^store/sqlite/"
      FORBID "^(zmq|boost/asio|SQLiteCpp/|sqlite3)")
layer(store "^store/" ALLOW store/ migrations/ DENY "^store/(sqlite|postgresql)/"
      FORBID "^(zmq|boost/asio|SQLiteCpp/|sqlite3|libpq|pqxx/)")
layer(client "^client/" ALLOW bus/protocol/ client/
      FORBID "^(SQLiteCpp/|sqlite3|libpq|boost/asio)")
layer(cli "^daemon/(botbus[.]cpp|cli_)" ALLOW bus/protocol/ client/ daemon/cli_
      FORBID "^(SQLiteCpp/|sqlite3|boost/asio)")
layer(daemon "^daemon/" ALLOW bus/protocol/ bus/core/ bus/server/ store/ daemon/ client/curve_keys
      FORBID "^(SQLiteCpp/|sqlite3)")

file(GLOB_RECURSE sources RELATIVE "${ROOT}"
  "${ROOT}/bus/*.hpp" "${ROOT}/bus/*.cpp"
  "${ROOT}/store/*.hpp" "${ROOT}/store/*.cpp"
  "${ROOT}/client/*.hpp" "${ROOT}/client/*.cpp"
  "${ROOT}/daemon/*.hpp" "${ROOT}/daemon/*.cpp")
list(SORT sources)
if(NOT sources)
  message(FATAL_ERROR "no sources found under ${ROOT}")
endif()

set(violations 0)
foreach(source IN LISTS sources)
  set(layer "")
  foreach(name IN LISTS layer_names)
    if(source MATCHES "${layer_${name}_files}")
      set(layer ${name})
      set(allowed "${layer_${name}_allow}")
      set(forbidden "${layer_${name}_forbid}")
      set(denied "${layer_${name}_deny}")
      break()
    endif()
  endforeach()
  if(layer STREQUAL "")
    continue()
  endif()
  file(STRINGS "${ROOT}/${source}" lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    if(line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
      set(header "${CMAKE_MATCH_1}")
      set(ok FALSE)
      foreach(prefix IN LISTS allowed)
        string(FIND "${header}" "${prefix}" at)
        if(at EQUAL 0)
          set(ok TRUE)
        endif()
      endforeach()
      if(ok AND NOT denied STREQUAL "" AND header MATCHES "${denied}")
        message("${source}: includes \"${header}\", which the ${layer} layer reaches only through store/store.hpp")
        math(EXPR violations "${violations} + 1")
      elseif(NOT ok)
        list(JOIN allowed ", " allowed_text)
        message("${source}: includes \"${header}\"; the ${layer} layer may include only ${allowed_text}")
        math(EXPR violations "${violations} + 1")
      endif()
    elseif(line MATCHES "#[ \t]*include[ \t]*<([^>]+)>")
      set(header "${CMAKE_MATCH_1}")
      if(header MATCHES "${forbidden}")
        message("${source}: includes <${header}>, which the ${layer} layer must not use")
        math(EXPR violations "${violations} + 1")
      endif()
    endif()
  endforeach()
endforeach()

list(LENGTH sources checked)
if(violations GREATER 0)
  message(FATAL_ERROR "${violations} include(s) break the layering (${checked} files checked); see docs/ARCHITECTURE.md")
endif()
message("layering holds: ${checked} files checked")
