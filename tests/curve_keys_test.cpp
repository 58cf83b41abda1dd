// CURVE key files (client/curve_keys.hpp) and botbusd's --auth settings
// (daemon/config.cpp): modes, round trips, and errors that name the file
// and line.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/curve_keys.hpp"
#include "daemon/config.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

std::string error_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "(no error)";
}

void write(const std::filesystem::path& file, const std::string& text) { std::ofstream(file) << text; }

mode_t mode_of(const std::filesystem::path& file) {
    struct stat status {};
    ::stat(file.c_str(), &status);
    return status.st_mode & 07777;
}

daemon::Config parse(std::vector<std::string> args) {
    args.insert(args.begin(), "botbusd");
    std::vector<const char*> argv;
    for (const auto& arg : args) argv.push_back(arg.c_str());
    return daemon::parse_args(static_cast<int>(argv.size()), argv.data()).config.value();
}

TEST(CurveKeys, KeygenWritesASecretFileOnlyItsOwnerReadsAndAPublicOneThatRoundTrip) {
    testing::TempDir dir;
    const auto file = dir.path() / "bot.key";
    const auto pair = client::make_key_pair();
    client::write_key_pair(file, pair);

    EXPECT_EQ(mode_of(file), 0600U);
    EXPECT_EQ(mode_of(dir.path() / "bot.key.pub"), 0644U);
    const auto read = client::read_key_pair(file);
    EXPECT_EQ(read.public_key, pair.public_key);
    EXPECT_EQ(read.secret_key, pair.secret_key);
    EXPECT_EQ(client::read_public_key((dir.path() / "bot.key.pub").string()), pair.public_key);
    EXPECT_EQ(client::read_public_key(file.string()), pair.public_key);
    EXPECT_EQ(client::read_public_key(pair.public_key), pair.public_key);
    // Never over a key someone relies on.
    EXPECT_NE(error_of([&] { client::write_key_pair(file, client::make_key_pair()); }).find("exists"),
              std::string::npos);
}

TEST(CurveKeys, ABadKeyFileIsNamedWithItsLine) {
    testing::TempDir dir;
    const auto file = dir.path() / "bad.key";
    const auto pair = client::make_key_pair();
    write(file, "# comment\npublic-key = " + pair.public_key + "\nsecret-key = tooshort\n");
    EXPECT_NE(error_of([&] { client::read_key_pair(file); }).find(file.string() + ":3"), std::string::npos);
    write(file, "public-key = " + pair.public_key + "\n");
    EXPECT_NE(error_of([&] { client::read_key_pair(file); }).find("secret-key"), std::string::npos);
    write(file, "public-key = " + pair.public_key + "\nsecret-key = " + pair.secret_key + "\nother = 1\n");
    EXPECT_NE(error_of([&] { client::read_key_pair(file); }).find(file.string() + ":3"), std::string::npos);
    // 40 characters, but not Z85 (zmq_z85_decode refuses the quote).
    EXPECT_FALSE(client::is_z85_key(std::string(39, 'a') + "\""));
    EXPECT_TRUE(client::is_z85_key(pair.public_key));
}

// '#' is one of Z85's characters: keys from any tool (pyzmq, zmq_curve_keypair)
// must be writable as they are; only a line starting with '#' is a comment.
TEST(CurveKeys, KeysHoldingAHashAreReadAsTheyAre) {
    testing::TempDir dir;
    client::CurveKeyPair pair;
    for (int i = 0; i < 1000 && pair.public_key.find('#') == std::string::npos; ++i) pair = client::make_key_pair();
    ASSERT_NE(pair.public_key.find('#'), std::string::npos) << "no key with '#' in 1000 draws";
    const auto file = dir.path() / "hash.key";
    write(file, "  # a comment, indented\npublic-key = " + pair.public_key + "\nsecret-key=" + pair.secret_key + "  \n");
    const auto read = client::read_key_pair(file);
    EXPECT_EQ(read.public_key, pair.public_key);
    EXPECT_EQ(read.secret_key, pair.secret_key);
    const auto allowlist = dir.path() / "allowlist";
    write(allowlist, "# bots\nhash-bot = " + pair.public_key + "\n");
    const auto listed = client::read_allowlist(allowlist);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed.begin()->first, pair.public_key);
    EXPECT_EQ(listed.begin()->second, "hash-bot");
}

TEST(CurveKeys, AnAllowlistMapsKeysToBotsAndRefusesDuplicatesAndBadLinesByLine) {
    testing::TempDir dir;
    const auto file = dir.path() / "allowlist";
    const auto alice = client::make_key_pair();
    const auto bob = client::make_key_pair();
    write(file, "# bots\nalice = " + alice.public_key + "\n\nbob = " + bob.public_key + "\n");
    const auto list = client::read_allowlist(file);
    ASSERT_EQ(list.size(), 2U);
    EXPECT_EQ(list.at(alice.public_key), "alice");
    EXPECT_EQ(list.at(bob.public_key), "bob");

    write(file, "alice = " + alice.public_key + "\nbob = " + alice.public_key + "\n");
    const auto twice = error_of([&] { client::read_allowlist(file); });
    EXPECT_NE(twice.find(file.string() + ":2"), std::string::npos) << twice;
    EXPECT_NE(twice.find("already listed"), std::string::npos) << twice;

    write(file, "alice = " + alice.public_key + "\nbad/name = " + bob.public_key + "\n");
    EXPECT_NE(error_of([&] { client::read_allowlist(file); }).find(file.string() + ":2"), std::string::npos);
    write(file, "alice = nonsense\n");
    EXPECT_NE(error_of([&] { client::read_allowlist(file); }).find(file.string() + ":1"), std::string::npos);
    write(file, "just words\n");
    EXPECT_NE(error_of([&] { client::read_allowlist(file); }).find(file.string() + ":1"), std::string::npos);
}

TEST(AuthConfig, CurveNeedsBothFilesAndReadsThem) {
    testing::TempDir dir;
    const auto server = dir.path() / "server.key";
    client::write_key_pair(server, client::make_key_pair());
    const auto alice = client::make_key_pair();
    write(dir.path() / "allow", "alice = " + alice.public_key + "\n");

    const auto config = parse({"--auth", "curve", "--server-key", server.string(), "--allowlist",
                               (dir.path() / "allow").string()});
    ASSERT_TRUE(config.server.curve);
    EXPECT_EQ(config.server.curve->allowlist.at(alice.public_key), "alice");
    EXPECT_EQ(config.server.curve->secret_key, client::read_key_pair(server).secret_key);
    EXPECT_FALSE(parse({}).server.curve);

    EXPECT_NE(error_of([&] { parse({"--auth", "curve", "--allowlist", (dir.path() / "allow").string()}); })
                  .find("--server-key"),
              std::string::npos);
    EXPECT_NE(error_of([&] { parse({"--auth", "curve", "--server-key", server.string()}); }).find("--allowlist"),
              std::string::npos);
    EXPECT_NE(error_of([&] { parse({"--auth", "kerberos"}); }).find("auth"), std::string::npos);
    // Set in the config file, a bad value names the option and the file.
    write(dir.path() / "botbusd.conf", "auth = magic\n");
    const auto from_file = error_of([&] { parse({"--config", (dir.path() / "botbusd.conf").string()}); });
    EXPECT_NE(from_file.find("auth"), std::string::npos) << from_file;
    EXPECT_NE(from_file.find("botbusd.conf"), std::string::npos) << from_file;
}

TEST(AuthConfig, OnlyLoopbackEndpointsServeWithoutAuthUnlessInsecure) {
    EXPECT_TRUE(daemon::is_local_endpoint("tcp://127.0.0.1:7440"));
    EXPECT_TRUE(daemon::is_local_endpoint("tcp://127.3.2.1:*"));
    EXPECT_TRUE(daemon::is_local_endpoint("tcp://[::1]:7440"));
    EXPECT_TRUE(daemon::is_local_endpoint("tcp://localhost:7440"));
    EXPECT_TRUE(daemon::is_local_endpoint("ipc:///run/botbus/command"));
    EXPECT_TRUE(daemon::is_local_endpoint("inproc://x"));
    EXPECT_FALSE(daemon::is_local_endpoint("tcp://0.0.0.0:7440"));
    EXPECT_FALSE(daemon::is_local_endpoint("tcp://*:7440"));
    EXPECT_FALSE(daemon::is_local_endpoint("tcp://192.168.1.5:7440"));
    EXPECT_FALSE(daemon::is_local_endpoint("tcp://eth0:7440"));

    EXPECT_NE(error_of([] { parse({"--feed-endpoint", "tcp://*:7441"}); }).find("--insecure"), std::string::npos);
    EXPECT_TRUE(parse({"--feed-endpoint", "tcp://*:7441", "--insecure"}).insecure);
}

}  // namespace
}  // namespace botbus
