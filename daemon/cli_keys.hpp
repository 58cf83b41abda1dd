// The CLI's CURVE keys: `botbus keygen FILE`, and the keys a connection to
// an authenticated daemon uses (--curve-key, --server-key; env BOTBUS_KEY,
// BOTBUS_SERVER_KEY).
#pragma once

#include <optional>
#include <string>

#include "client/curve_keys.hpp"

namespace botbus::cli {

struct GlobalOptions;

// The client keys the options name: none when neither is given; a usage
// error (UsageError) when only one is, or a file is bad.
std::optional<client::CurveClientKeys> curve_keys_of(const GlobalOptions& options);

// `botbus keygen FILE`: writes the pair (0600) and FILE.pub (0644), prints
// the public key. Exit status as the other commands'.
int run_keygen(const std::string& file, bool json);

}  // namespace botbus::cli
