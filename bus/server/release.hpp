// What a committed batch shows once it is durable, in the order it is shown:
// plain data, so that the committer can hold it without knowing sockets and
// its tests can build one by hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "bus/core/handler.hpp"
#include "bus/server/backups.hpp"
#include "store/store.hpp"

namespace botbus::bus {

// A fetch waiting for messages (FetchWait), and whom to answer.
struct WaitingFetch {
    std::string routing_id;
    bool req_style = false;
    std::optional<PackedValue> id;
    FetchWait wait;
};

struct Release {
    struct Reply {
        std::string routing_id;
        bool req_style;
        std::string body;
    };
    struct Hello {
        std::string routing_id;
        std::string bot;
        bool no_pushes;  // REQ-style, or asked for no pushes
        bool fan_out = false;    // a copy of every direct message, not a share
        std::size_t credit = 0;  // its share's window
    };
    struct Bye {
        std::string routing_id;
    };
    struct Unbind {
        std::string routing_id;
        Reader reader;  // the durable reader; the connection's ephemeral one goes too
    };
    struct Bind {
        std::string routing_id;
        DeliveryBinding binding;
    };
    // Changes to who receives what, applied in the order of their requests.
    using DeliveryChange = std::variant<Hello, Unbind, Bind, Bye>;

    std::uint64_t ticket = 0;  // released once a sync covers this ticket
    std::vector<Reply> replies;
    std::vector<DeliveryChange> changes;
    std::vector<WaitingFetch> fetch_waits;
    std::vector<WantedBackup> backups;  // started once shown, so each copy holds the batches before
    std::vector<store::Event> events;
    std::vector<std::string> sync_tokens;
    // For the publish-to-acknowledgement histogram: when the batch was read
    // off the socket, and how many of its publishes and sends succeeded.
    std::chrono::steady_clock::time_point received_at{};
    std::uint64_t acked_writes = 0;
};

}  // namespace botbus::bus
