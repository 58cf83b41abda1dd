#include "bus/core/acl.hpp"

#include <utility>

#include "bus/protocol/vocabulary.hpp"

namespace botbus::bus {
namespace {

// Whether `pattern` can match some name that starts with `prefix`.
bool overlaps_prefix(std::string_view pattern, std::string_view prefix) {
    if (pattern.ends_with('*')) {
        const auto stem = pattern.substr(0, pattern.size() - 1);
        return stem.starts_with(prefix) || prefix.starts_with(stem);
    }
    return pattern.starts_with(prefix);
}

// Whether `pattern` matches every name that starts with `prefix`.
bool covers_prefix(std::string_view pattern, std::string_view prefix) {
    return pattern.ends_with('*') && prefix.starts_with(pattern.substr(0, pattern.size() - 1));
}

bool bot_matches(std::string_view pattern, const std::string* bot) {
    return bot ? pattern_matches(pattern, *bot) : pattern == "*";
}

std::string who(const std::string* bot) { return bot ? "bot '" + *bot + "'" : std::string("an anonymous connection"); }

}  // namespace

std::string_view permission_name(Permission permission) {
    switch (permission) {
    case Permission::publish: return "publish";
    case Permission::read: return "read";
    case Permission::admin: return "admin";
    }
    return {};
}

std::optional<Permission> parse_permission(std::string_view name) {
    for (const auto p : {Permission::publish, Permission::read, Permission::admin}) {
        if (permission_name(p) == name) return p;
    }
    return std::nullopt;
}

bool is_valid_pattern(std::string_view pattern) {
    if (pattern == "*") return true;
    if (pattern.ends_with('*')) pattern.remove_suffix(1);
    // '*' is not a name character, so the stem cannot hold another one.
    return is_valid_name(pattern);
}

bool pattern_matches(std::string_view pattern, std::string_view name) {
    if (pattern.ends_with('*')) return name.starts_with(pattern.substr(0, pattern.size() - 1));
    return pattern == name;
}

void AclIndex::load(std::vector<store::AclRule> rules) {
    m_rules.clear();
    for (auto& rule : rules) m_rules.insert(std::move(rule));
}

bool AclIndex::allows(const std::string* bot, Permission permission, std::string_view channel) const {
    if (is_admin(bot)) return true;
    const auto name = permission_name(permission);
    bool covered = false;
    for (const auto& rule : m_rules) {
        if (rule.permission != name || !pattern_matches(rule.channel, channel)) continue;
        if (bot_matches(rule.bot, bot)) return true;
        covered = true;
    }
    return !covered && m_policy.default_allow;
}

Check AclIndex::check(const std::string* bot, Permission permission, std::string_view channel) const {
    if (allows(bot, permission, channel)) return std::nullopt;
    const auto name = permission_name(permission);
    bool covered = false;
    for (const auto& rule : m_rules) covered = covered || (rule.permission == name && pattern_matches(rule.channel, channel));
    return WireError(Errc::forbidden, who(bot) + " may not " + std::string(name) + " channel '" + std::string(channel) +
                                          "' (" + (covered ? "no rule grants it" : "the default policy denies it") +
                                          ")");
}

Check AclIndex::check_admin(const std::string* bot, std::string_view what) const {
    if (is_admin(bot)) return std::nullopt;
    return WireError(Errc::forbidden, who(bot) + " may not " + std::string(what) + " (admins only)");
}

bool AclIndex::may_read_all(const std::string* bot, std::string_view prefix) const {
    if (is_admin(bot)) return true;
    const auto name = permission_name(Permission::read);
    bool covered_for_bot = false;
    for (const auto& rule : m_rules) {
        if (rule.permission != name || !overlaps_prefix(rule.channel, prefix)) continue;
        // A rule that leaves the bot out may close a channel of the prefix to
        // it (unless another rule names the bot there too: denied anyway, as
        // the feed cannot tell channel by channel).
        if (!bot_matches(rule.bot, bot)) return false;
        covered_for_bot = covered_for_bot || covers_prefix(rule.channel, prefix);
    }
    return m_policy.default_allow || covered_for_bot;
}

bool AclIndex::may_subscribe_topic(const std::optional<std::string>& bot, std::string_view topic_prefix) const {
    const std::string* b = bot ? &*bot : nullptr;
    constexpr std::string_view k_channel_root = "ch/";
    if (k_channel_root.starts_with(topic_prefix)) return may_read_all(b, "");  // "", "c", "ch", "ch/"
    if (!topic_prefix.starts_with(k_channel_root)) return true;                // workflow, sync, sys topics
    const auto rest = topic_prefix.substr(k_channel_root.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return may_read_all(b, rest);  // "ch/ops": every channel "ops..."
    return allows(b, Permission::read, rest.substr(0, slash));
}

}  // namespace botbus::bus
