// Errors the store reports by type, whatever backend is behind it.
#pragma once

#include <stdexcept>

namespace botbus::store {

// A problem that must stop start-up (a file that cannot be opened, is not a
// botbus database, or fails its migrations); the message says what and where.
class StartupError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace botbus::store
