#include "store/event.hpp"

#include <array>
#include <chrono>
#include <utility>

namespace botbus::store {
namespace {

// In the enum's order: event_type_name indexes it.
constexpr std::array k_event_types{
    std::pair{EventType::channel_created, std::string_view{"channel.created"}},
    std::pair{EventType::channel_deleted, std::string_view{"channel.deleted"}},
    std::pair{EventType::subscription_added, std::string_view{"subscription.added"}},
    std::pair{EventType::subscription_removed, std::string_view{"subscription.removed"}},
    std::pair{EventType::channel_retention_set, std::string_view{"channel.retention_set"}},
    std::pair{EventType::stream_trimmed, std::string_view{"stream.trimmed"}},
    std::pair{EventType::message_published, std::string_view{"message.published"}},
    std::pair{EventType::message_sent, std::string_view{"message.sent"}},
    std::pair{EventType::mailbox_acked, std::string_view{"mailbox.acked"}},
    std::pair{EventType::message_expired, std::string_view{"message.expired"}},
    std::pair{EventType::message_dead_lettered, std::string_view{"message.dead_lettered"}},
    std::pair{EventType::consumer_created, std::string_view{"consumer.created"}},
    std::pair{EventType::consumer_acked, std::string_view{"consumer.acked"}},
    std::pair{EventType::consumer_deleted, std::string_view{"consumer.deleted"}},
    std::pair{EventType::workflow_put, std::string_view{"workflow.put"}},
    std::pair{EventType::workflow_deleted, std::string_view{"workflow.deleted"}},
    std::pair{EventType::workflow_archived, std::string_view{"workflow.archived"}},
    std::pair{EventType::run_started, std::string_view{"run.started"}},
    std::pair{EventType::run_paused, std::string_view{"run.paused"}},
    std::pair{EventType::run_resumed, std::string_view{"run.resumed"}},
    std::pair{EventType::run_completed, std::string_view{"run.completed"}},
    std::pair{EventType::run_failed, std::string_view{"run.failed"}},
    std::pair{EventType::run_cancel_requested, std::string_view{"run.cancel_requested"}},
    std::pair{EventType::run_cancelled, std::string_view{"run.cancelled"}},
    std::pair{EventType::run_context, std::string_view{"run.context"}},
    std::pair{EventType::run_crashed, std::string_view{"run.crashed"}},
    std::pair{EventType::step_started, std::string_view{"step.started"}},
    std::pair{EventType::step_completed, std::string_view{"step.completed"}},
    std::pair{EventType::step_failed, std::string_view{"step.failed"}},
    std::pair{EventType::step_skipped, std::string_view{"step.skipped"}},
    std::pair{EventType::step_waiting_approval, std::string_view{"step.waiting_approval"}},
    std::pair{EventType::step_approved, std::string_view{"step.approved"}},
};

constexpr bool in_enum_order() {
    for (std::size_t i = 0; i < k_event_types.size(); ++i) {
        if (static_cast<std::size_t>(k_event_types[i].first) != i) return false;
    }
    return static_cast<std::size_t>(EventType::step_approved) + 1 == k_event_types.size();
}
static_assert(in_enum_order(), "k_event_types must list every EventType once, in the enum's order");

}  // namespace

std::string_view event_type_name(EventType type) { return k_event_types[static_cast<std::size_t>(type)].second; }

std::optional<EventType> parse_event_type(std::string_view name) {
    for (const auto& [type, known] : k_event_types) {
        if (known == name) return type;
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
