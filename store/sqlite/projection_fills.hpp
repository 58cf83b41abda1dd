// Fills projections that a migration added after the log already held
// events they need (the migration lists them in projection_fills; SQL
// cannot read the events' msgpack payloads). Run by the store when it opens,
// after the migrations, in one transaction per projection.
#pragma once

#include <SQLiteCpp/Database.h>

namespace botbus::store {

// mailbox_expiries (migration 0013): every direct message with a time to
// live that is not settled.
void fill_projections(SQLite::Database& db);

}  // namespace botbus::store
