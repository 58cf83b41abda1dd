// Permissions: who may publish to, read, or administer which channel.
//
// Operation: a rule is {bot pattern, permission, channel pattern}; a pattern
// is an exact name, a prefix ending in '*' ("ops.*"), or "*". Deciding
// (bot, permission, channel): an admin (named in the daemon's config) may
// everything. Otherwise take the rules with that permission whose channel
// pattern matches the channel: none -> the default policy decides; some ->
// allowed iff one of them has a bot pattern matching the bot. So a grant on
// a channel closes that channel to every bot the grants do not name. An
// anonymous connection (no hello) matches only bot pattern "*" and is never
// an admin. Rules are granted and revoked by events in the log (acl.granted,
// acl.revoked); this index holds the rules in force, loaded from the store
// at start and changed by the acl ops as they append, so a check reads no
// SQL.
// Concurrency: the server's loop thread only.
// Limitations: a check walks the rules of one permission (linear in them):
// meant for tens or hundreds of rules, not millions.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bus/core/op_context.hpp"
#include "store/payloads.hpp"

namespace botbus::bus {

enum class Permission { publish, read, admin };

std::string_view permission_name(Permission permission);
std::optional<Permission> parse_permission(std::string_view name);

// A pattern: "*", a name, or a name prefix followed by one '*' (the prefix
// may be empty only as "*" itself). Names as is_valid_name.
bool is_valid_pattern(std::string_view pattern);
bool pattern_matches(std::string_view pattern, std::string_view name);

// The daemon's configuration of permissions (botbusd --admin, --default-policy).
struct AclPolicy {
    std::set<std::string> admins;
    bool default_allow = true;  // a channel no rule of the permission covers
    // A bot's mailbox, subscriptions and dead letters, bot-owned definitions
    // and runs nobody holds are their owners' (and admins') only. botbusd
    // sets it under --default-policy deny and under --auth curve: once a bot
    // is who its key says, its things are its own; without authentication
    // anyone can claim any bot, so closing them would protect nothing.
    bool owners_only = false;
};

class AclIndex {
public:
    explicit AclIndex(AclPolicy policy = {}) : m_policy(std::move(policy)) {}

    const AclPolicy& policy() const { return m_policy; }

    // Replaces every rule (start-up, or after a rolled-back batch).
    void load(std::vector<store::AclRule> rules);
    // False when the rule was already there / was not there.
    bool add(const store::AclRule& rule) { return m_rules.insert(rule).second; }
    bool remove(const store::AclRule& rule) { return m_rules.erase(rule) > 0; }
    bool contains(const store::AclRule& rule) const { return m_rules.contains(rule); }
    const std::set<store::AclRule>& rules() const { return m_rules; }

    // `bot` null: an anonymous connection.
    bool is_admin(const std::string* bot) const { return bot && m_policy.admins.contains(*bot); }
    bool allows(const std::string* bot, Permission permission, std::string_view channel) const;
    // allows(), or the forbidden error that names the bot, the permission
    // and the channel, and why.
    Check check(const std::string* bot, Permission permission, std::string_view channel) const;
    // Only an admin: the forbidden error saying `what` needs one.
    Check check_admin(const std::string* bot, std::string_view what) const;

    // The feed's gate (for an XPUB subscription): whether `bot` may receive
    // every topic that starts with `topic_prefix`. "ch/<name>/..." -> may
    // read that channel; a prefix that covers more channels ("", "c", "ch/",
    // "ch/ops") -> may read every channel it can cover, decided without
    // knowing which channels exist: an admin; or no read rule whose channel
    // pattern overlaps the prefix leaves the bot out, and the default policy
    // allows or a rule naming the bot covers every channel of the prefix.
    // Topics other than channels' (workflows "wf/", "run/", feed syncs
    // "sync/", "sys/") are open: allowed.
    bool may_subscribe_topic(const std::optional<std::string>& bot, std::string_view topic_prefix) const;

private:
    // Whether the bot may read every channel whose name starts with `prefix`.
    bool may_read_all(const std::string* bot, std::string_view prefix) const;

    AclPolicy m_policy;
    std::set<store::AclRule> m_rules;  // ordered by bot, permission, channel: acl.list's order
};

}  // namespace botbus::bus
