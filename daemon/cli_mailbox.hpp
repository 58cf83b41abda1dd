// The mailbox commands of the botbus CLI: a bot's delivery state
// (`mailbox`), the dead letters (`dlq`), replaying one back to its
// mailbox (`dlq replay`) and the durable channel subscriptions' lag
// (`lag`). botbus.cpp lists them in its command table.
// Single-threaded, like the rest of the CLI.
#pragma once

#include "daemon/cli_command.hpp"

namespace botbus::cli {

void mailbox_options(po::options_description& d);
int run_mailbox(Session& s, const Invocation& in);

void dlq_options(po::options_description& d);
int run_dlq(Session& s, const Invocation& in);

int run_dlq_replay(Session& s, const Invocation& in);

void lag_options(po::options_description& d);
int run_lag(Session& s, const Invocation& in);

}  // namespace botbus::cli
