// Replies that show stored messages: they keep the rows their message views
// point into, and write themselves as the protocol's declared reply
// (bus/protocol/replies.hpp), so no body is copied before it is packed.
#pragma once

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "bus/core/delivery_codec.hpp"
#include "bus/protocol/replies.hpp"
#include "store/mailbox_queries.hpp"
#include "store/message_queries.hpp"

namespace botbus::bus {

// history: {messages, more}
struct HistoryRows {
    std::vector<store::MessageRow> rows;
    bool more = false;

    template <typename F> void fields(F& f) {
        HistoryReply reply{views_of(rows), more};
        reply.fields(f);
    }
    // Room for the packed reply, so a large page is not copied while it grows.
    std::size_t size_hint() const {
        std::size_t bytes = 64;
        for (const auto& row : rows) bytes += row.body.size() + row.from.size() + row.type.size() + 96;
        return bytes;
    }
};

// dlq.list: {dead_letters, more}
struct DeadLetterRows {
    struct Row {
        store::DeadLetterRow dead;
        std::optional<store::MessageRow> message;  // none: trimmed from the log
    };
    std::vector<Row> rows;
    bool more = false;

    template <typename F> void fields(F& f) {
        DlqListReply reply;
        reply.more = more;
        for (const auto& [d, message] : rows) {
            reply.dead_letters.push_back({d.seq, d.message_seq, d.bot, d.reason, d.deliveries, d.dead_at,
                                          message ? std::optional(view_of(*message)) : std::nullopt, d.replayed_seq,
                                          d.channel});
        }
        reply.fields(f);
    }
};

}  // namespace botbus::bus
