// Build-time check that the store seam's public headers bring no SQLite in:
// this file compiles only if none of them included SQLiteCpp, whose classes
// it then declares differently (SQLiteCpp is installed in /usr/include, so
// include paths alone cannot enforce it). Compiled, never linked or run.
#include "store/consumer_queries.hpp"
#include "store/errors.hpp"
#include "store/event.hpp"
#include "store/mailbox_queries.hpp"
#include "store/message_queries.hpp"
#include "store/payloads.hpp"
#include "store/store.hpp"
#include "store/trimmer.hpp"
#include "store/workflow_payloads.hpp"
#include "store/workflow_queries.hpp"

namespace SQLite {
// A redefinition error here names the public header that included SQLiteCpp.
enum Database { not_sqlitecpp_database };
enum Statement { not_sqlitecpp_statement };
enum Column { not_sqlitecpp_column };
enum Exception { not_sqlitecpp_exception };
}  // namespace SQLite
