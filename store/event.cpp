#include "store/event.hpp"

#include <array>
#include <chrono>

namespace botbus::store {
namespace {

// Every type, for parse_event_type's search.
constexpr std::array k_event_types{
    EventType::channel_created,   EventType::channel_deleted,       EventType::subscription_added,
    EventType::subscription_removed, EventType::channel_retention_set, EventType::stream_trimmed,
    EventType::message_published, EventType::message_sent,          EventType::mailbox_acked,
    EventType::message_expired,   EventType::message_dead_lettered, EventType::consumer_created,
    EventType::consumer_acked,    EventType::consumer_deleted,      EventType::workflow_put,
    EventType::workflow_deleted,  EventType::workflow_archived,     EventType::run_started,
    EventType::run_paused,        EventType::run_resumed,           EventType::run_completed,
    EventType::run_failed,        EventType::run_cancel_requested,  EventType::run_cancelled,
    EventType::run_context,       EventType::run_crashed,           EventType::step_started,
    EventType::step_completed,    EventType::step_failed,           EventType::step_skipped,
    EventType::step_waiting_approval, EventType::step_approved,   EventType::acl_granted,
    EventType::acl_revoked,
};

// The list holds each type once, in the enum's order, and the value after
// its last has no name: a type added to the enum and to event_type_name but
// not here fails this; one added without a name fails -Wswitch there.
constexpr bool lists_every_type() {
    for (std::size_t i = 0; i < k_event_types.size(); ++i) {
        if (static_cast<std::size_t>(k_event_types[i]) != i || event_type_name(k_event_types[i]).empty()) return false;
    }
    return event_type_name(static_cast<EventType>(k_event_types.size())).empty();
}
static_assert(lists_every_type(), "k_event_types must list every EventType once, in the enum's order");

}  // namespace

std::optional<EventType> parse_event_type(std::string_view name) {
    for (const auto type : k_event_types) {
        if (event_type_name(type) == name) return type;
    }
    return std::nullopt;
}

std::string stream::channel(std::string_view name) {
    std::string s{"ch/"};
    s.append(name);
    return s;
}

std::string stream::mailbox(std::string_view bot) {
    std::string s{"dm/"};
    s.append(bot);
    return s;
}

std::string stream::workflow(std::string_view workflow_id) {
    std::string s{"wf/"};
    s.append(workflow_id);
    return s;
}

std::string stream::run(std::string_view run_id) {
    std::string s{"run/"};
    s.append(run_id);
    return s;
}

std::int64_t now_us() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace botbus::store
