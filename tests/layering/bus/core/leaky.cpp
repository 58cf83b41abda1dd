// A fixture for the layering check's own test: the core reaching past the
// store seam into the SQLite backend. Never compiled.
#include "store/sqlite/sqlite_store.hpp"
