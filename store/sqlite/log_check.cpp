#include "store/sqlite/log_check.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <filesystem>

#include "store/errors.hpp"
#include "store/sqlite/seq_record.hpp"
#include "store/sqlite/sqlite_connection.hpp"

namespace botbus::store {

LogCheck check_log(const std::string& database_path) {
    if (!std::filesystem::exists(database_path)) throw StartupError("no database at " + database_path);
    LogCheck check;
    check.recorded_seq = SeqRecord::read_file(SeqRecord::path_for(database_path));
    try {
        SQLite::Database db(database_path, SQLite::OPEN_READONLY);
        db.setBusyTimeout(5000);
        SQLite::Transaction snapshot(db);  // deferred: one read snapshot for the whole walk
        sql::SqliteConnection connection(db);
        check_chain(connection, check);
        snapshot.commit();
    } catch (const StartupError& e) {
        throw StartupError(database_path + ": " + e.what());
    } catch (const SQLite::Exception& e) {
        const std::string what = e.what();
        const bool old_schema = what.find("no such") != std::string::npos;
        throw StartupError(database_path + ": cannot read the log (" + what + ")" +
                           (old_schema ? "; a database from before the hash chain (migration 0008) is migrated "
                                         "by starting botbusd once"
                                       : ""));
    }
    if (check.intact && check.recorded_seq && *check.recorded_seq > check.last_seq) {
        check.intact = false;
        check.problem = range_text(check.last_seq + 1, *check.recorded_seq) +
                        " missing: the log ends at seq " + std::to_string(check.last_seq) + " but " +
                        SeqRecord::path_for(database_path) + " records seqs up to " +
                        std::to_string(*check.recorded_seq) + " as acknowledged";
    }
    return check;
}

}  // namespace botbus::store
