// The Server reads time only through ServerOptions::clock.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <zmq.hpp>

#include <cstdint>

#include "bus/server/server.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

using namespace botbus::bus;
namespace store = botbus::store;

namespace {

TEST(ServerClock, TheServerStampsItsStartWithTheInjectedClock) {
    constexpr std::int64_t k_fake = 1'234'567;
    boost::asio::io_context io;
    zmq::context_t zmq;
    store::SqliteStore store{{":memory:", store::Durability::full}};
    ServerOptions options;
    options.command_endpoint = "tcp://127.0.0.1:*";
    options.feed_endpoint = "tcp://127.0.0.1:*";
    options.clock = [] { return k_fake; };
    Server server(io, zmq, store, options);
    server.start();
    EXPECT_EQ(server.counters().started_at_us, k_fake);
    server.stop(0);
}

}  // namespace
