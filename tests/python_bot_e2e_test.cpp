// The minimal Python bot in docs/PROTOCOL.md, run as written against the
// real botbusd: with CURVE keys (a daemon with --auth curve) and without.
// Only its endpoint and key file paths are pointed at the test's daemon. It
// is what a bot author in another language copies first, so it must work.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

// The ```python block that follows "A minimal Python bot" in PROTOCOL.md.
std::string documented_python_bot() {
    std::ifstream in(std::string(BOTBUS_DOCS_DIR) + "/PROTOCOL.md");
    std::stringstream text;
    text << in.rdbuf();
    const auto doc = text.str();
    const auto intro = doc.find("A minimal Python bot");
    if (intro == std::string::npos) return {};
    const auto open = doc.find("```python\n", intro);
    if (open == std::string::npos) return {};
    const auto start = open + std::string("```python\n").size();
    const auto close = doc.find("\n```", start);
    return close == std::string::npos ? std::string() : doc.substr(start, close - start + 1);
}

// Replaces the one occurrence of `from` in `text`; fails the test when it
// is not there (the doc changed under the test).
void replace_once(std::string& text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << "the documented bot no longer holds " << from;
    EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " is there twice";
    text.replace(at, from.size(), to);
}

testing::RunResult run_python(const std::filesystem::path& script) {
    return testing::run_program("/usr/bin/python3", {script.string()}, std::chrono::seconds(30));
}

TEST(DocumentedPythonBot, RunsAsWrittenWithCurveKeys) {
    testing::TempDir dir;
    testing::CurveKeys keys(dir.path(), {"pybot", "reader"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    auto bot = documented_python_bot();
    ASSERT_FALSE(bot.empty()) << "no Python bot found in docs/PROTOCOL.md";
    replace_once(bot, "\"tcp://127.0.0.1:7440\"", "\"" + daemon.command_endpoint() + "\"");
    replace_once(bot, "\"pybot.key\"", "\"" + keys.key_file("pybot").string() + "\"");
    replace_once(bot, "\"server.key.pub\"", "\"" + keys.server_key_file().string() + ".pub\"");
    const auto script = dir.path() / "bot.py";
    std::ofstream(script) << bot;

    const auto run = run_python(script);

    ASSERT_EQ(run.exit_code, 0) << run.stdout_text << run.stderr_text << daemon.stderr_text();
    EXPECT_NE(run.stdout_text.find("hello from python"), std::string::npos) << run.stdout_text;
    // The message is in the log, from the bot its key is listed for.
    zmq::context_t context;
    client::Client reader(context, keys.options_for(daemon, "reader"));
    reader.hello("reader");
    const auto history = testing::full_history(reader, "lobby");
    ASSERT_EQ(history.size(), 1U);
    EXPECT_EQ(history[0].from, "pybot");
}

TEST(DocumentedPythonBot, RunsAsWrittenWithoutCurve) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    auto bot = documented_python_bot();
    ASSERT_FALSE(bot.empty()) << "no Python bot found in docs/PROTOCOL.md";
    replace_once(bot, "USE_CURVE = True", "USE_CURVE = False");
    replace_once(bot, "\"tcp://127.0.0.1:7440\"", "\"" + daemon.command_endpoint() + "\"");
    const auto script = dir.path() / "bot.py";
    std::ofstream(script) << bot;

    const auto run = run_python(script);

    ASSERT_EQ(run.exit_code, 0) << run.stdout_text << run.stderr_text << daemon.stderr_text();
    EXPECT_NE(run.stdout_text.find("hello from python"), std::string::npos) << run.stdout_text;
}

}  // namespace
}  // namespace botbus
