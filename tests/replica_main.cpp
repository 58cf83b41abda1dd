// botbus-test-replica: one replica of a bot, as the replica tests start it
// in a process of its own so that they can kill -9 it while it holds
// messages. It takes messages and never acknowledges them, printing each
// seq on a line of its own as it gets it (flushed), until it is killed.
//
//   botbus-test-replica ENDPOINT BOT mailbox CREDIT
//   botbus-test-replica ENDPOINT BOT push CHANNEL CREDIT
//   botbus-test-replica ENDPOINT BOT pull CHANNEL MAX
#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>

#include "client/client.hpp"

using namespace botbus;

int main(int argc, char** argv) {
    if (argc < 5) {
        std::cerr << "usage: botbus-test-replica ENDPOINT BOT (mailbox CREDIT | push CHANNEL CREDIT | pull CHANNEL MAX)\n";
        return 2;
    }
    const std::string endpoint = argv[1];
    const std::string bot = argv[2];
    const std::string mode = argv[3];
    if (mode != "mailbox" && argc < 6) return 2;
    zmq::context_t context;
    client::ClientOptions options;
    options.command_endpoint = endpoint;
    options.timeout = std::chrono::milliseconds(10000);
    client::Client client(context, options);
    bus::HelloRequest hello{bot};
    if (mode == "mailbox") hello.credit = std::stoull(argv[4]);
    client.call_ok(hello);
    if (mode == "push" || mode == "pull") {
        bus::SubscribeRequest subscribe;
        subscribe.channel = argv[4];
        subscribe.durable = true;
        subscribe.deliver = mode;
        if (mode == "push") subscribe.credit = std::stoull(argv[5]);
        client.call_ok(subscribe);
    }
    std::cout << "ready" << std::endl;
    if (mode == "pull") {
        const auto fetched = client.fetch(argv[4], std::stoull(argv[5]), std::chrono::milliseconds(10000));
        for (const auto& message : fetched.messages) std::cout << message.seq << '\n';
        std::cout.flush();
    }
    for (;;) {
        const auto push = client.next_push(std::chrono::milliseconds(1000));
        if (push && push->event != "caught_up") std::cout << push->seq << std::endl;
    }
}
