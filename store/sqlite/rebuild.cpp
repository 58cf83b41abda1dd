#include "store/sqlite/rebuild.hpp"

#include "store/sqlite/sqlite_connection.hpp"

namespace botbus::store {

std::size_t rebuild_projections(Store& source, SQLite::Database& target) {
    sql::SqliteConnection connection(target);
    return rebuild_projections(source, connection, migrations::all(),
                               target.getFilename().empty() ? ":memory:" : target.getFilename());
}

std::vector<std::string> compare_projections(SQLite::Database& live, SQLite::Database& rebuilt,
                                             std::size_t max_differences) {
    sql::SqliteConnection live_connection(live);
    sql::SqliteConnection rebuilt_connection(rebuilt);
    return compare_projections(live_connection, rebuilt_connection, max_differences);
}

}  // namespace botbus::store
