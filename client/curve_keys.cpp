#include "client/curve_keys.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <cstdint>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <vector>

#include "bus/protocol/vocabulary.hpp"

namespace botbus::client {

namespace {

struct Entry {
    std::string name;
    std::string value;
    int line = 0;
};

std::string where(const std::filesystem::path& file, int line) {
    return file.string() + ":" + std::to_string(line);
}

// Every `name = value` line of `file`. Not boost::program_options' config
// parser: it takes `#` anywhere as the start of a comment, and `#` is one of
// Z85's 85 characters (about a third of keys hold one). Here a comment is a
// line whose first non-blank character is `#`, and a value runs to the end
// of its line. `known` lists the names allowed (empty: any name).
std::vector<Entry> read_entries(const std::filesystem::path& file, const std::vector<std::string>& known) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) throw std::runtime_error("cannot read " + file.string() + ": it is a directory");
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    constexpr std::string_view blanks = " \t\r";
    const auto trimmed = [&](std::string_view text) {
        const auto first = text.find_first_not_of(blanks);
        if (first == std::string_view::npos) return std::string_view();
        return text.substr(first, text.find_last_not_of(blanks) - first + 1);
    };
    std::vector<Entry> entries;
    std::string text;
    for (int line = 1; std::getline(in, text); ++line) {
        const auto content = trimmed(text);
        if (content.empty() || content.front() == '#') continue;
        const auto equals = content.find('=');
        if (equals == std::string_view::npos) throw std::runtime_error(where(file, line) + ": expected NAME = VALUE");
        Entry entry{std::string(trimmed(content.substr(0, equals))), std::string(trimmed(content.substr(equals + 1))), line};
        if (entry.name.empty()) throw std::runtime_error(where(file, line) + ": expected NAME = VALUE");
        if (!known.empty() && std::find(known.begin(), known.end(), entry.name) == known.end()) {
            throw std::runtime_error(where(file, line) + ": unknown name '" + entry.name + "'");
        }
        entries.push_back(std::move(entry));
    }
    return entries;
}

std::string checked_key(const Entry& entry, const std::filesystem::path& file) {
    if (is_z85_key(entry.value)) return entry.value;
    throw std::runtime_error(where(file, entry.line) + ": " + entry.name + " is not a CURVE key (40 Z85 characters)");
}

void write_file(const std::filesystem::path& file, const std::string& content, mode_t mode) {
    // O_EXCL: never replace a key someone relies on; the mode is set at
    // creation, so the secret is never readable by others even briefly.
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot create " + file.string() + ": " + std::strerror(errno));
    ::fchmod(fd, mode);  // the umask may have taken bits the mode asked for
    std::size_t done = 0;
    while (done < content.size()) {
        const auto n = ::write(fd, content.data() + done, content.size() - done);
        if (n <= 0) {
            ::close(fd);
            throw std::runtime_error("cannot write " + file.string() + ": " + std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace

bool is_z85_key(std::string_view text) {
    if (text.size() != k_z85_key_length) return false;
    const std::string terminated(text);
    std::array<std::uint8_t, 32> decoded{};
    return zmq_z85_decode(decoded.data(), terminated.c_str()) != nullptr;
}

CurveKeyPair make_key_pair() {
    if (!zmq_has("curve")) throw std::runtime_error("this libzmq was built without CURVE support");
    std::array<char, 41> public_key{};
    std::array<char, 41> secret_key{};
    if (zmq_curve_keypair(public_key.data(), secret_key.data()) != 0) {
        throw std::runtime_error(std::string("cannot make a CURVE key pair: ") + zmq_strerror(zmq_errno()));
    }
    return CurveKeyPair{public_key.data(), secret_key.data()};
}

void write_key_pair(const std::filesystem::path& file, const CurveKeyPair& pair) {
    auto pub = file;
    pub += ".pub";
    std::error_code ec;
    if (std::filesystem::exists(pub, ec)) throw std::runtime_error("cannot create " + pub.string() + ": it exists");
    write_file(file, "# botbus CURVE key pair (keep secret)\npublic-key = " + pair.public_key +
                         "\nsecret-key = " + pair.secret_key + "\n",
               0600);
    write_file(pub, "# botbus CURVE public key\npublic-key = " + pair.public_key + "\n", 0644);
}

CurveKeyPair read_key_pair(const std::filesystem::path& file) {
    std::optional<std::string> public_key;
    std::optional<std::string> secret_key;
    for (const auto& entry : read_entries(file, {"public-key", "secret-key"})) {
        auto& slot = entry.name == "public-key" ? public_key : secret_key;
        if (slot) throw std::runtime_error(where(file, entry.line) + ": " + entry.name + " given twice");
        slot = checked_key(entry, file);
    }
    if (!public_key || !secret_key) {
        throw std::runtime_error(file.string() + ": a key pair file needs both public-key and secret-key lines");
    }
    return CurveKeyPair{*public_key, *secret_key};
}

std::string read_public_key(const std::string& file_or_key) {
    if (is_z85_key(file_or_key) && !std::filesystem::exists(file_or_key)) return file_or_key;
    std::optional<std::string> public_key;
    for (const auto& entry : read_entries(file_or_key, {"public-key", "secret-key"})) {
        if (entry.name != "public-key") continue;
        if (public_key) throw std::runtime_error(where(file_or_key, entry.line) + ": public-key given twice");
        public_key = checked_key(entry, file_or_key);
    }
    if (!public_key) throw std::runtime_error(file_or_key + ": no public-key line");
    return *public_key;
}

void use_curve(zmq::socket_t& socket, const CurveClientKeys& keys) {
    socket.set(zmq::sockopt::curve_serverkey, keys.server_public_key);
    socket.set(zmq::sockopt::curve_publickey, keys.own.public_key);
    socket.set(zmq::sockopt::curve_secretkey, keys.own.secret_key);
}

CurveAllowlist read_allowlist(const std::filesystem::path& file) {
    CurveAllowlist allowlist;
    for (const auto& entry : read_entries(file, {})) {
        if (!bus::is_valid_name(entry.name)) {
            throw std::runtime_error(where(file, entry.line) + ": '" + entry.name +
                                     "' is not a bot name (1..128 of A-Z a-z 0-9 . _ : -)");
        }
        const auto key = checked_key(entry, file);
        const auto [it, added] = allowlist.emplace(key, entry.name);
        if (!added) {
            throw std::runtime_error(where(file, entry.line) + ": the key of " + entry.name +
                                     " is already listed, for " + it->second);
        }
    }
    return allowlist;
}

}  // namespace botbus::client
