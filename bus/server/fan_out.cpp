#include "bus/server/fan_out.hpp"

#include <utility>

#include "bus/core/workflow_handler.hpp"
#include "bus/server/feed_events.hpp"

namespace botbus::bus {

FanOut::FanOut(store::Store& store, CommandHandler& handler, Publish publish, std::function<std::int64_t()> clock)
    : m_store(store), m_handler(handler), m_publish(std::move(publish)), m_clock(std::move(clock)) {}

void FanOut::fan_out(const store::Event& event, Touched& touched) {
    using store::EventType;
    switch (event.type) {
    case EventType::message_published: {
        const auto fields = m_messages.decode(event.type, event.payload);
        if (!fields.channel) return;
        m_publish(channel_topic(*fields.channel), encode_message_event(view_of(event, fields), "message"));
        // Pushed by the DeliveryRouter, from the log, after everything older.
        const auto [it, fresh] = touched.channels.emplace(*fields.channel);
        if (fresh) {
            for (auto& reader : m_handler.deliveries().readers_of(*it)) touched.readers.insert(std::move(reader));
        }
        return;
    }
    case EventType::message_sent: {
        const auto fields = m_messages.decode(event.type, event.payload);
        if (fields.to) touched.readers.insert(Reader{"", std::string(*fields.to), ""});
        return;
    }
    case EventType::mailbox_acked:
    case EventType::message_expired:
    case EventType::consumer_acked:
        settled(event, touched);
        return;
    case EventType::message_dead_lettered: {
        settled(event, touched);
        msgpack::object_handle keep_alive;
        const auto dead = store::decode_payload<store::MessageDeadLettered>(event.type, event.payload, keep_alive);
        m_publish(std::string(k_dead_letters_topic), encode_dead_letter_event(event, dead));
        return;
    }
    case EventType::consumer_deleted: {
        msgpack::object_handle keep_alive;
        const auto gone = store::decode_payload<store::ConsumerDeleted>(event.type, event.payload, keep_alive);
        const Reader reader{gone.channel, gone.bot, ""};
        // Unless subscribed again later in the same batch.
        if (!m_store.consumers().floor(gone.bot, gone.channel)) {
            m_handler.deliveries().forget(reader);
            touched.forgotten.push_back(reader);
            touched.readers.erase(reader);
        }
        return;
    }
    case EventType::consumer_created:  // delivery starts when the subscribe's binding is released
    case EventType::stream_trimmed:    // readers skip what is gone when they next read
        return;
    case EventType::channel_deleted: {
        m_publish(std::string(k_channels_topic), encode_channel_event(event));
        msgpack::object_handle keep_alive;
        const auto gone = store::decode_payload<store::ChannelDeleted>(event.type, event.payload, keep_alive);
        // Every connection's delivered subscription ends with the channel
        // (durable ones by their consumer.deleted events), unless it was
        // created again later in the same batch.
        if (m_store.messages().channel_exists(gone.name)) return;
        for (auto& reader : m_handler.deliveries().end_ephemeral(gone.name)) {
            touched.readers.erase(reader);
            touched.forgotten.push_back(std::move(reader));
        }
        return;
    }
    case EventType::channel_created:
    case EventType::channel_retention_set:
    case EventType::subscription_added:
    case EventType::subscription_removed:
        m_publish(std::string(k_channels_topic), encode_channel_event(event));
        return;
    case EventType::workflow_put:
    case EventType::workflow_deleted:
    case EventType::workflow_archived:
    case EventType::run_started:
    case EventType::run_paused:
    case EventType::run_resumed:
    case EventType::run_completed:
    case EventType::run_failed:
    case EventType::run_cancel_requested:
    case EventType::run_cancelled:
    case EventType::run_context:
    case EventType::run_crashed:
    case EventType::step_started:
    case EventType::step_completed:
    case EventType::step_failed:
    case EventType::step_skipped:
    case EventType::step_waiting_approval:
    case EventType::step_approved:
        publish_workflow_event(event);
        return;
    case EventType::acl_granted:  // a grant closes a channel to the bots it does not name
    case EventType::acl_revoked:
        end_unreadable(touched);
        touched.rules_changed = true;
        return;
    }
}

void FanOut::end_unreadable(Touched& touched) {
    // Checked against the rules in force now (which may already include
    // later batches' changes: those are shown after this one).
    const auto& acl = m_handler.acl();
    for (auto& reader : m_handler.deliveries().channel_readers()) {
        if (acl.allows(&reader.bot, Permission::read, reader.channel)) continue;
        // Pushed nothing more: an ephemeral subscription ends, a durable one
        // stays in the log (its fetches and subscribes are refused until a
        // rule lets the bot read again, and a subscribe then resumes it).
        m_handler.deliveries().forget(reader);
        touched.readers.erase(reader);
        touched.forgotten.push_back(std::move(reader));
    }
}

void FanOut::settled(const store::Event& event, Touched& touched) {
    // A settlement makes room in the reader's window.
    if (auto reader = m_handler.deliveries().on_settled(event, m_clock())) touched.readers.insert(std::move(*reader));
}

void FanOut::publish_workflow_event(const store::Event& event) {
    const bool is_run = event.stream.starts_with("run/");
    const std::string id = event.stream.substr(event.stream.find('/') + 1);
    std::string workflow_id = id;
    if (is_run) {
        const auto run = m_handler.workflows().queries().run(id);
        workflow_id = run ? run->workflow_id : std::string();
    }
    const auto encoded =
        encode_workflow_event(event, workflow_id, is_run ? std::optional<std::string_view>(id) : std::nullopt);
    if (is_run) m_publish(run_topic(id), encoded);
    if (!workflow_id.empty()) m_publish(workflow_topic(workflow_id), encoded);
}

}  // namespace botbus::bus
