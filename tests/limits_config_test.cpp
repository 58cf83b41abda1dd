// The limits on one client as botbusd takes them (daemon/config.cpp): their
// defaults, flags and config-file keys, and values it refuses.
#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

daemon::Config parse(std::vector<std::string> args) {
    args.insert(args.begin(), "botbusd");
    std::vector<const char*> argv;
    for (const auto& arg : args) argv.push_back(arg.c_str());
    auto parsed = daemon::parse_args(static_cast<int>(argv.size()), argv.data());
    EXPECT_TRUE(parsed.config.has_value());
    return parsed.config.value_or(daemon::Config{});
}

// The message parse_args refuses `args` with; empty when it accepts them.
std::string refusal(std::vector<std::string> args) {
    try {
        parse(std::move(args));
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

TEST(LimitsConfig, DefaultsLeaveRoomForReplicasAndForTheBenchmarksPipelining) {
    const auto config = parse({});
    EXPECT_EQ(config.server.max_connections_per_bot, 64U);
    EXPECT_EQ(config.server.messaging.max_subscriptions_per_bot, 1000U);
    EXPECT_EQ(config.server.max_in_flight, 4096U);
    EXPECT_GT(config.server.max_in_flight, 1000U) << "bench/ keeps 1000 requests in flight";
}

TEST(LimitsConfig, FlagsAndConfigFileKeysSetEachLimit) {
    const auto flags = parse({"--max-connections-per-bot", "3", "--max-subscriptions-per-bot", "5",
                              "--max-in-flight", "7"});
    EXPECT_EQ(flags.server.max_connections_per_bot, 3U);
    EXPECT_EQ(flags.server.messaging.max_subscriptions_per_bot, 5U);
    EXPECT_EQ(flags.server.max_in_flight, 7U);

    testing::TempDir dir;
    const auto path = dir.file("botbusd.conf");
    std::ofstream(path) << "max-connections-per-bot = 11\nmax-subscriptions-per-bot = 12\nmax-in-flight = 13\n";
    const auto file = parse({"--config", path});
    EXPECT_EQ(file.server.max_connections_per_bot, 11U);
    EXPECT_EQ(file.server.messaging.max_subscriptions_per_bot, 12U);
    EXPECT_EQ(file.server.max_in_flight, 13U);
    EXPECT_EQ(parse({"--config", path, "--max-in-flight", "14"}).server.max_in_flight, 14U) << "flags win";
}

TEST(LimitsConfig, ZeroIsRefusedAndNamed) {
    for (const std::string option : {"max-connections-per-bot", "max-subscriptions-per-bot", "max-in-flight"}) {
        const auto message = refusal({"--" + option, "0"});
        EXPECT_NE(message.find(option), std::string::npos) << option << ": " << message;
    }
}

}  // namespace
}  // namespace botbus
