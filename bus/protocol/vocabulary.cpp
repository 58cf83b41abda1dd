#include "bus/protocol/vocabulary.hpp"

#include <array>
#include <utility>

namespace botbus::bus {
namespace {

constexpr std::array<std::pair<Op, std::string_view>, 44> k_ops{{
    {Op::hello, "hello"},
    {Op::ping, "ping"},
    {Op::channel_create, "channel.create"},
    {Op::channel_delete, "channel.delete"},
    {Op::channel_list, "channel.list"},
    {Op::subscribe, "subscribe"},
    {Op::unsubscribe, "unsubscribe"},
    {Op::subscriptions, "subscriptions"},
    {Op::subscribers, "subscribers"},
    {Op::publish, "publish"},
    {Op::send, "send"},
    {Op::history, "history"},
    {Op::ack, "ack"},
    {Op::stats, "stats"},
    {Op::feed_sync, "feed.sync"},
    {Op::mailbox, "mailbox"},
    {Op::dlq_list, "dlq.list"},
    {Op::dlq_replay, "dlq.replay"},
    {Op::fetch, "fetch"},
    {Op::consumers, "consumers"},
    {Op::channel_retention, "channel.retention"},
    {Op::workflow_put, "workflow.put"},
    {Op::workflow_get, "workflow.get"},
    {Op::workflow_list, "workflow.list"},
    {Op::workflow_delete, "workflow.delete"},
    {Op::run_start, "run.start"},
    {Op::run_pause, "run.pause"},
    {Op::run_resume, "run.resume"},
    {Op::run_complete, "run.complete"},
    {Op::run_fail, "run.fail"},
    {Op::run_cancel, "run.cancel"},
    {Op::run_checkpoint, "run.checkpoint"},
    {Op::run_heartbeat, "run.heartbeat"},
    {Op::run_get, "run.get"},
    {Op::run_list, "run.list"},
    {Op::run_steps, "run.steps"},
    {Op::run_completed_steps, "run.completed_steps"},
    {Op::run_crashed, "run.crashed"},
    {Op::step_start, "step.start"},
    {Op::step_complete, "step.complete"},
    {Op::step_fail, "step.fail"},
    {Op::step_skip, "step.skip"},
    {Op::step_wait_approval, "step.wait_approval"},
    {Op::step_approve, "step.approve"},
}};

constexpr std::array<std::pair<Errc, std::string_view>, 19> k_errcs{{
    {Errc::bad_request, "bad_request"},
    {Errc::frame_too_large, "frame_too_large"},
    {Errc::unsupported_version, "unsupported_version"},
    {Errc::unknown_op, "unknown_op"},
    {Errc::missing_field, "missing_field"},
    {Errc::invalid_field, "invalid_field"},
    {Errc::invalid_name, "invalid_name"},
    {Errc::not_identified, "not_identified"},
    {Errc::not_found, "not_found"},
    {Errc::conflict, "conflict"},
    {Errc::storage_error, "storage_error"},
    {Errc::shutting_down, "shutting_down"},
    {Errc::internal, "internal"},
    {Errc::invalid_definition, "invalid_definition"},
    {Errc::has_runs, "has_runs"},
    {Errc::invalid_transition, "invalid_transition"},
    {Errc::not_lease_owner, "not_lease_owner"},
    {Errc::depth_exceeded, "depth_exceeded"},
    {Errc::rate_limited, "rate_limited"},
}};

}  // namespace

std::string_view op_name(Op op) {
    for (const auto& [value, name] : k_ops) {
        if (value == op) return name;
    }
    return "?";
}

std::optional<Op> op_from_name(std::string_view name) {
    for (const auto& [value, text] : k_ops) {
        if (text == name) return value;
    }
    return std::nullopt;
}

std::string_view errc_name(Errc code) {
    for (const auto& [value, name] : k_errcs) {
        if (value == code) return name;
    }
    return "internal";
}

std::optional<Errc> errc_from_name(std::string_view name) {
    for (const auto& [value, text] : k_errcs) {
        if (text == name) return value;
    }
    return std::nullopt;
}

bool is_valid_name(std::string_view name) {
    if (name.empty() || name.size() > k_max_name_length) return false;
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == ':' || c == '-';
        if (!ok) return false;
    }
    return true;
}

std::string channel_topic(std::string_view channel) {
    std::string topic{"ch/"};
    topic.append(channel);
    topic.push_back('/');
    return topic;
}

std::string sync_topic(std::string_view token) {
    std::string topic{"sync/"};
    topic.append(token);
    topic.push_back('/');
    return topic;
}

std::string workflow_topic(std::string_view workflow_id) {
    std::string topic{"wf/"};
    topic.append(workflow_id);
    topic.push_back('/');
    return topic;
}

std::string run_topic(std::string_view run_id) {
    std::string topic{"run/"};
    topic.append(run_id);
    topic.push_back('/');
    return topic;
}

}  // namespace botbus::bus
