#include "daemon/cli_keys.hpp"

#include <iostream>

#include "daemon/cli_command.hpp"

namespace botbus::cli {

std::optional<client::CurveClientKeys> curve_keys_of(const GlobalOptions& options) {
    if (options.key_file.empty() && options.server_key.empty()) return std::nullopt;
    if (options.key_file.empty()) throw UsageError("--server-key needs --curve-key FILE (this bot's key pair)");
    if (options.server_key.empty()) throw UsageError("--curve-key needs --server-key (the daemon's public key)");
    try {
        return client::CurveClientKeys{client::read_key_pair(options.key_file),
                                       client::read_public_key(options.server_key)};
    } catch (const std::runtime_error& e) {
        throw UsageError(e.what());
    }
}

int run_keygen(const std::string& file, bool json) {
    const auto pair = client::make_key_pair();
    client::write_key_pair(file, pair);
    if (json) {
        Json line{{"file", file}, {"public_file", file + ".pub"}, {"public_key", pair.public_key}};
        std::cout << line.dump() << '\n';
    } else {
        std::cout << "wrote " << file << " (key pair, mode 0600) and " << file << ".pub (public key)\n"
                  << "public key: " << pair.public_key << '\n';
    }
    return 0;
}

}  // namespace botbus::cli
