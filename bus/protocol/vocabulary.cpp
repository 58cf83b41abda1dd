#include "bus/protocol/vocabulary.hpp"

#include <array>
#include <utility>

namespace botbus::bus {
namespace {

constexpr std::array<std::pair<Errc, std::string_view>, 21> k_errcs{{
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
    {Errc::forbidden, "forbidden"},
    {Errc::limit_reached, "limit_reached"},
}};

}  // namespace

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
