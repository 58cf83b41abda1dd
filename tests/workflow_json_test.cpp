// The JSON documents of the workflow ops (workflow_support.hpp): a msgpack
// value converts to JSON only when json::dump() can write it back out, so
// every string and map key must be well-formed UTF-8. A value that passed
// to_json used to throw later, outside the op's error path.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "bus/core/workflow_support.hpp"

namespace botbus::bus {
namespace {

using workflow_support::to_json;

bool converts(const PackedValue& value, std::string* problem_out = nullptr) {
    std::string problem;
    const auto j = to_json(value, "context", problem);
    if (problem_out) *problem_out = problem;
    if (j) j->dump();  // what the ops do next: must not throw
    return j.has_value();
}

TEST(WorkflowJson, WellFormedUtf8OfEveryLengthConverts) {
    for (const std::string text : {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xef\xbf\xbf", "\xf0\x9f\x98\x80",
                                   "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80"}) {
        EXPECT_TRUE(converts(pack_as_value(text))) << text;
        EXPECT_TRUE(converts(pack_as_value(std::map<std::string, int>{{text, 1}}))) << text;
    }
}

TEST(WorkflowJson, StringsAndKeysThatAreNotUtf8AreRefusedNamingTheField) {
    for (const std::string text : {
             "\x80",              // a lone continuation byte
             "\xc3",              // truncated
             "\xe2\x82",          // truncated
             "\xc0\xaf",          // overlong
             "\xe0\x80\xaf",      // overlong
             "\xf0\x80\x80\xaf",  // overlong
             "\xed\xa0\x80",      // a UTF-16 surrogate
             "\xf4\x90\x80\x80",  // past U+10FFFF
             "\xf8\x88\x80\x80\x80",
             "\xff",
             "ok\xe2\x28\xa1",  // a bad continuation byte
         }) {
        std::string problem;
        EXPECT_FALSE(converts(pack_as_value(text), &problem)) << "value " << testing::PrintToString(text);
        EXPECT_NE(problem.find("'context'"), std::string::npos) << problem;
        EXPECT_NE(problem.find("UTF-8"), std::string::npos) << problem;
        EXPECT_FALSE(converts(pack_as_value(std::map<std::string, int>{{text, 1}}), &problem))
            << "key " << testing::PrintToString(text);
        EXPECT_NE(problem.find("key"), std::string::npos) << problem;
        EXPECT_FALSE(converts(pack_as_value(std::vector<std::map<std::string, std::string>>{{{"k", text}}})))
            << "nested " << testing::PrintToString(text);
    }
}

}  // namespace
}  // namespace botbus::bus
