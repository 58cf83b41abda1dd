// The permission commands of the botbus CLI: `acl grant`, `acl revoke` and
// `acl list` (docs/PROTOCOL.md, "Permissions"; admins only, so they say
// hello as --as). botbus.cpp lists them in its command table.
// Single-threaded, like the rest of the CLI.
#pragma once

#include "daemon/cli_command.hpp"

namespace botbus::cli {

int run_acl_grant(Session& s, const Invocation& in);
int run_acl_revoke(Session& s, const Invocation& in);
int run_acl_list(Session& s, const Invocation& in);

}  // namespace botbus::cli
