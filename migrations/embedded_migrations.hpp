// The SQL migrations in migrations/, embedded at build time.
#pragma once

#include <string_view>
#include <vector>

namespace botbus::migrations {

struct MigrationSource {
    int version;                // from the NNNN_ file-name prefix
    std::string_view name;      // the rest of the file name, without .sql
    std::string_view checksum;  // SHA-256 of the file, hex
    std::string_view sql;
};

// Every SQLite migration (migrations/*.sql), in ascending version order.
const std::vector<MigrationSource>& all();
// Every PostgreSQL migration (migrations/postgresql/*.sql), the same way.
const std::vector<MigrationSource>& postgresql();

}  // namespace botbus::migrations
