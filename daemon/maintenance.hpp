// botbusd's maintenance commands: rebuild, verify (the data directory's log,
// or a backup copy) and restore. Each prints what it found on stdout and
// returns the exit status: 0 good, 1 something is wrong (named).
#pragma once

#include "daemon/config.hpp"

namespace botbus::daemon {

int rebuild(const Config& config);
int verify(const Config& config);
int restore(const Config& config);

}  // namespace botbus::daemon
