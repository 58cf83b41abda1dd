// The workflow commands of the botbus CLI: definitions (`workflow put`,
// `workflow show`, `workflow delete`, `workflows`), runs (`runs`, `run`) and
// following one run live (`watch`). botbus.cpp lists them in its command
// table; each prints for people, or one JSON object per line with --json.
// Single-threaded, like the rest of the CLI.
#pragma once

#include "daemon/cli_command.hpp"

namespace botbus::cli {

void workflow_put_options(po::options_description& d);
int run_workflow_put(Session& s, const Invocation& in);

void workflows_options(po::options_description& d);
int run_workflows(Session& s, const Invocation& in);

int run_workflow_show(Session& s, const Invocation& in);

void workflow_delete_options(po::options_description& d);
int run_workflow_delete(Session& s, const Invocation& in);

void runs_options(po::options_description& d);
int run_runs(Session& s, const Invocation& in);

int run_run(Session& s, const Invocation& in);

void watch_options(po::options_description& d);
int run_watch(Session& s, const Invocation& in);

}  // namespace botbus::cli
