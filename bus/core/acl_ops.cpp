// The permission ops: acl.grant, acl.revoke, acl.list (admins only), and the
// check every op that reads another bot's things makes.
#include <utility>

#include "bus/core/handler.hpp"
#include "bus/core/paging.hpp"
#include "store/payloads.hpp"

namespace botbus::bus {
namespace {

// The rule a grant or revoke names, once its fields pass.
Result<store::AclRule> parse_rule(const std::string& bot, const std::string& permission, const std::string& channel) {
    if (!parse_permission(permission)) {
        return WireError(Errc::invalid_field, "field 'permission' must be \"publish\", \"read\" or \"admin\"");
    }
    for (const auto& [key, pattern] : {std::pair{"bot", &bot}, std::pair{"channel", &channel}}) {
        if (!is_valid_pattern(*pattern)) {
            return WireError(Errc::invalid_name, std::string("field '") + key +
                                                     "' must be a name, a name prefix ending in '*', or '*'");
        }
    }
    return store::AclRule{bot, permission, channel};
}

AclRuleInfo info(const store::AclRule& rule) { return AclRuleInfo{rule.bot, rule.permission, rule.channel}; }

}  // namespace

Check CommandHandler::may_see_bot(const Ctx& ctx, const std::string& bot, std::string_view what) const {
    const auto* me = ctx.identity();
    // Unless owners_only, as before permissions: open to all.
    if (!m_acl.policy().owners_only || (me && *me == bot) || m_acl.is_admin(me)) return std::nullopt;
    return WireError(Errc::forbidden, (me ? "bot '" + *me + "'" : std::string("an anonymous connection")) +
                                          " may not " + std::string(what) + " of bot '" + bot +
                                          "' (only that bot or an admin)");
}

Result<AclChangeReply> CommandHandler::op(Ctx& ctx, const AclGrantRequest& r) {
    if (auto refused = m_acl.check_admin(ctx.identity(), "grant permissions")) return std::move(*refused);
    auto rule = parse_rule(r.bot, r.permission, r.channel);
    if (!rule) return rule.take_error();
    if (m_acl.contains(*rule)) return AclChangeReply{info(*rule), false, std::nullopt};  // nothing appended
    const auto appended = ctx.batch.append({std::string(store::stream::k_acl), store::EventType::acl_granted, ctx.me,
                                            std::nullopt, store::encode_payload(*rule)});
    m_acl.add(*rule);
    return AclChangeReply{info(*rule), true, appended.seq};
}

Result<AclChangeReply> CommandHandler::op(Ctx& ctx, const AclRevokeRequest& r) {
    if (auto refused = m_acl.check_admin(ctx.identity(), "revoke permissions")) return std::move(*refused);
    auto rule = parse_rule(r.bot, r.permission, r.channel);
    if (!rule) return rule.take_error();
    if (!m_acl.contains(*rule)) {
        return WireError(Errc::not_found, "no rule grants '" + r.bot + "' " + r.permission + " on '" + r.channel + "'");
    }
    const auto appended = ctx.batch.append({std::string(store::stream::k_acl), store::EventType::acl_revoked, ctx.me,
                                            std::nullopt, store::encode_payload(*rule)});
    m_acl.remove(*rule);
    return AclChangeReply{info(*rule), true, appended.seq};
}

Result<AclListReply> CommandHandler::op(Ctx& ctx, const AclListRequest& r) {
    if (auto refused = m_acl.check_admin(ctx.identity(), "list permissions")) return std::move(*refused);
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    const int cursor_fields = (r.after_bot ? 1 : 0) + (r.after_permission ? 1 : 0) + (r.after_channel ? 1 : 0);
    if (cursor_fields != 0 && cursor_fields != 3) {
        return WireError(Errc::invalid_field, "fields 'after_bot', 'after_permission' and 'after_channel' go "
                                              "together: the last rule listed");
    }
    const auto& rules = m_acl.rules();
    auto it = cursor_fields == 3
                  ? rules.upper_bound(store::AclRule{*r.after_bot, *r.after_permission, *r.after_channel})
                  : rules.begin();
    AclListReply reply;
    // Rules are three names of at most 129 bytes: 1000 of them stay far
    // below the reply budget, so the limit alone bounds a page.
    for (; it != rules.end() && reply.rules.size() < *limit; ++it) reply.rules.push_back(info(*it));
    reply.more = it != rules.end();
    return reply;
}

}  // namespace botbus::bus
