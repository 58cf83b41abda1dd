// Fan-out: what a released event shows, and to whom.
//
// Operation: for each event of a released batch, in log order, fan_out()
// publishes the feed events it makes (through the injected `publish`, with
// their topics) and says which readers may have something new to be pushed
// and which channels have new messages:
//   message.published -> ch/<channel>/, and the channel's readers
//   message.sent      -> the recipient's mailbox reader (no feed event)
//   settlements (mailboxes, dead letters, consumers streams) -> the reader
//     they made room for; message.dead_lettered also -> sys/dead_letters/;
//     consumer.deleted forgets the reader unless it was subscribed again;
//     channel.deleted also forgets the channel's ephemeral readers
//   acl.granted, acl.revoked -> forgets every channel reader whose bot may
//     no longer read its channel (no feed event)
//   channels stream   -> sys/channels/
//   run/<id> events   -> run/<id>/ and wf/<workflow_id>/; wf/<id> -> wf/<id>/
// Pushing itself is the DeliveryRouter's (delivery_router.hpp): it reads
// the log for each touched reader after the whole batch is shown.
// Concurrency: the loop thread only (it reads the store and drives
// Deliveries).
// Limitations: a run event whose run is unknown to the projection is
// published on run/<id>/ only.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "bus/core/handler.hpp"
#include "store/payloads.hpp"
#include "store/store.hpp"

namespace botbus::bus {

// What a released batch changed for the readers.
struct Touched {
    std::set<Reader> readers;          // may have something to push now
    std::set<std::string> channels;    // have new messages
    std::vector<Reader> forgotten;     // subscriptions gone: stop routing them, answer their fetches
    bool rules_changed = false;        // a permission rule changed: the feed's subscriptions are checked again
};

class FanOut {
public:
    using Publish = std::function<void(const std::string& topic, std::string event)>;

    FanOut(store::Store& store, CommandHandler& handler, Publish publish, std::function<std::int64_t()> clock);

    // Shows one released event.
    void fan_out(const store::Event& event, Touched& touched);

private:
    void settled(const store::Event& event, Touched& touched);
    void publish_workflow_event(const store::Event& event);
    // A permission changed: the channel readers whose bot may no longer read
    // their channel are forgotten (nothing more is pushed to them).
    void end_unreadable(Touched& touched);

    store::Store& m_store;
    CommandHandler& m_handler;
    Publish m_publish;
    std::function<std::int64_t()> m_clock;
    store::MessageDecoder m_messages;  // fan-out reads every message it sends
};

}  // namespace botbus::bus
