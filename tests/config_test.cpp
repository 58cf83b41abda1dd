// Settings botbusd derives from others (daemon/config.cpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "daemon/config.hpp"

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

TEST(Config, ReadAheadPerConnectionIsSizedFromTheLargestFrameSoItIsBoundedInBytes) {
    // 64 MiB of read-ahead: 64 frames of the default 1 MiB.
    EXPECT_EQ(parse({}).server.recv_hwm, 64);
    EXPECT_EQ(parse({"--max-frame", "4194304"}).server.recv_hwm, 16);
    EXPECT_EQ(parse({"--max-frame", "268435456"}).server.recv_hwm, 16);  // never fewer than 16
    EXPECT_EQ(parse({"--max-frame", "65536"}).server.recv_hwm, 1000);    // nor more than 1000
    EXPECT_EQ(parse({"--max-frame", "4194304", "--recv-hwm", "5"}).server.recv_hwm, 5);  // the operator's word wins
}

}  // namespace
}  // namespace botbus
