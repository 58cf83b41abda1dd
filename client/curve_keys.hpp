// CURVE key files, one format for the daemon, the CLI and the client
// library (PROTOCOL.md "Authentication (CURVE)").
//
// Operation: a key pair file holds `public-key = <Z85>` and
// `secret-key = <Z85>` lines; its `.pub` companion only the public line.
// An allowlist file holds `bot-name = <Z85 public key>` lines. In both, a
// line whose first non-blank character is `#` is a comment (only there: `#`
// is a Z85 character), and errors name the file and line. A key
// is 40 Z85 characters that zmq_z85_decode accepts (32 bytes).
// Concurrency: plain functions; no shared state.
// Limitations: write_key_pair() sets the modes (0600 for the pair, 0644 for
// the .pub) itself, but it cannot protect a key file from its directory's
// owner; keep key files in a directory only the bot (or botbusd) can read.
#pragma once

#include <zmq.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace botbus::client {

inline constexpr std::size_t k_z85_key_length = 40;

struct CurveKeyPair {
    std::string public_key;  // Z85, 40 characters
    std::string secret_key;  // Z85, 40 characters
};

// What a CURVE client needs: its own pair and the daemon's public key.
struct CurveClientKeys {
    CurveKeyPair own;
    std::string server_public_key;
};

// Bot name by Z85 public key.
using CurveAllowlist = std::map<std::string, std::string>;

// 40 Z85 characters that decode to a 32-byte key.
bool is_z85_key(std::string_view text);

// A fresh pair from zmq_curve_keypair; throws std::runtime_error when
// libzmq was built without CURVE.
CurveKeyPair make_key_pair();

// Writes `file` (mode 0600, both keys) and `file`.pub (mode 0644, the public
// key). Refuses to overwrite an existing file. Throws std::runtime_error.
void write_key_pair(const std::filesystem::path& file, const CurveKeyPair& pair);

// Reads a key pair file; throws std::runtime_error naming the file (and
// line) when it is unreadable, malformed, or lacks a key.
CurveKeyPair read_key_pair(const std::filesystem::path& file);

// A public key given as its 40 Z85 characters, or as a file holding a
// `public-key = ` line (a .pub file or a key pair file).
std::string read_public_key(const std::string& file_or_key);

// Makes `socket` a CURVE client of the daemon; call before connect().
void use_curve(zmq::socket_t& socket, const CurveClientKeys& keys);

// Reads an allowlist; throws std::runtime_error naming the file and line of
// a bad bot name, a bad key, or a key listed twice.
CurveAllowlist read_allowlist(const std::filesystem::path& file);

}  // namespace botbus::client
