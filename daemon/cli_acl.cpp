#include "daemon/cli_acl.hpp"

#include <iostream>
#include <string>
#include <vector>

#include "daemon/cli_output.hpp"

namespace botbus::cli {
namespace {

std::string text(const Json& object, const char* key) {
    return object.is_object() && object.contains(key) ? cell(object[key]) : std::string();
}

// `bot PERMISSION channel` as one line.
std::string rule_line(const Json& rule) {
    return text(rule, "bot") + ' ' + text(rule, "permission") + ' ' + text(rule, "channel");
}

template <typename Request>
int change(Session& s, const Invocation& in, const char* done, const char* unchanged) {
    Request request{in.args[0], in.args[1], in.args[2]};
    const auto fields = reply_fields(s.identified().call_ok(request));
    if (s.out().json()) {
        s.out().object(fields);
        return 0;
    }
    const auto rule = fields.value("rule", Json::object());
    s.out().line(std::string(fields.value("changed", false) ? done : unchanged) + ": " + rule_line(rule) +
                 (fields.contains("seq") ? " (seq " + cell(fields["seq"]) + ")" : std::string()));
    return 0;
}

}  // namespace

int run_acl_grant(Session& s, const Invocation& in) {
    return change<bus::AclGrantRequest>(s, in, "granted", "granted already");
}

int run_acl_revoke(Session& s, const Invocation& in) {
    return change<bus::AclRevokeRequest>(s, in, "revoked", "revoked");
}

int run_acl_list(Session& s, const Invocation&) {
    const auto rules = read_all_pages(s.identified(), bus::AclListRequest{}, "rules",
                                      [](bus::AclListRequest& next, const Json& last, const Json&) {
                                          next.after_bot = last.value("bot", std::string());
                                          next.after_permission = last.value("permission", std::string());
                                          next.after_channel = last.value("channel", std::string());
                                      })["rules"];
    if (s.out().json()) {
        for (const auto& rule : rules) s.out().object(rule);
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"BOT", "PERMISSION", "CHANNEL"}};
    for (const auto& rule : rules) rows.push_back({text(rule, "bot"), text(rule, "permission"), text(rule, "channel")});
    std::cout << table(rows);
    return 0;
}

}  // namespace botbus::cli
