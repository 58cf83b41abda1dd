// `botbusd verify` on a SQLite file: the log's hash chain (chain_check.hpp)
// and a log that ends below the seq record (seq_record.hpp).
//
// Operation: opens the database read-only on a connection of its own and
// reads in one read transaction, so it may run beside a daemon that keeps
// appending (it then checks the snapshot it read).
#pragma once

#include <string>

#include "store/sql/chain_check.hpp"

namespace botbus::store {

// Throws StartupError when the file cannot be opened or predates the chain.
LogCheck check_log(const std::string& database_path);

}  // namespace botbus::store
