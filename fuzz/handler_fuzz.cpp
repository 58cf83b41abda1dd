// libFuzzer target: request frames decoded and executed by the core
// CommandHandler in batches over a real SqliteStore, as botbusd's loop does
// (bus/server/server.cpp), without sockets. Input format: handler_input.hpp.
//
// Operation: each input runs against a fresh in-memory store and handler, so
// any crash replays from its input alone. A fake clock moves 1 ms per
// request (and past every lease when a record asks), so leases, TTLs and
// rate windows behave the same on every run.
// Checks, for every request: no exception leaves CommandHandler::handle (the
// server would roll back the whole batch, every client's requests with it);
// a failed request appends no events; every reply is a msgpack map with
// `ok`, echoes the id, and decodes in the client library (fuzz_checks.hpp);
// Outcome::failed agrees with `ok`. For every batch: it commits. For every
// input that appended events: the projections equal a rebuild from the log
// (verify_projections; skipped otherwise, as it costs as much as the rest).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "bus/core/handler.hpp"
#include "bus/protocol/codec.hpp"
#include "fuzz_checks.hpp"
#include "handler_input.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace botbus;
using fuzz::check;

namespace {

constexpr std::int64_t k_start_us = 1'800'000'000'000'000;  // a fixed UTC µs, 2027
constexpr std::int64_t k_lease_us = 30'000'000;

struct World {
    std::int64_t now_us = k_start_us;
    store::SqliteStore store{{":memory:", store::Durability::full}};
    bus::ServerCounters counters;
    bus::CommandHandler handler;
    bus::Session sessions[fuzz::k_sessions];

    World()
        : handler(store, counters, bus::WorkflowOptions{k_lease_us, [this] { return now_us; }},
                  make_messaging()) {}

    bus::MessagingOptions make_messaging() {
        bus::MessagingOptions options;
        options.clock = [this] { return now_us; };
        options.rate_limit = bus::RateLimit{50, 20};  // low enough that a long input meets it
        return options;
    }
};

std::string what_of(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "a non-std exception";
    }
}

void run_request(World& world, const fuzz::Record& record, store::Batch& batch) {
    auto decoded = bus::decode_request(record.frame, bus::k_default_max_frame);
    if (const auto* failure = std::get_if<bus::DecodeFailure>(&decoded)) {
        fuzz::check_reply(bus::encode_error_reply(failure->id, failure->error), failure->id);
        return;
    }
    const auto& envelope = std::get<bus::Envelope>(decoded);
    auto& session = world.sessions[record.session];
    const auto events_before = batch.events().size();
    bus::Outcome outcome;
    try {
        outcome = world.handler.handle(envelope, session, batch);
    } catch (...) {
        fuzz::fail(std::string("an exception escaped CommandHandler::handle for ") +
                   std::string(bus::op_name(bus::op_of(envelope.request))) + ": " + what_of(std::current_exception()));
    }
    if (outcome.failed) check(batch.events().size() == events_before, "a failed request appended events");
    if (outcome.fetch_wait) {
        check(!outcome.failed && outcome.reply.empty(), "a waiting fetch also has a reply");
    } else if (outcome.backup_name) {
        // Answered by the server once the copy is written, not here.
        check(!outcome.failed && outcome.reply.empty(), "a backup also has an immediate reply");
    } else {
        fuzz::check_reply(outcome.reply, envelope.id);
        const auto reply = bus::decode_reply(outcome.reply);
        check(reply->ok == !outcome.failed, "Outcome::failed disagrees with the reply's ok");
    }
    if (outcome.hello_bot) session.bot = *outcome.hello_bot;
}

void commit(World& world, std::optional<store::Batch>& batch) {
    if (!batch) return;
    try {
        batch->commit();
    } catch (...) {
        fuzz::fail("a batch did not commit: " + what_of(std::current_exception()));
    }
    batch.reset();
    (void)world;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto records = fuzz::split_records(std::string_view(reinterpret_cast<const char*>(data), size));
    if (records.size() > 64) return -1;  // keeps each input quick; longer scripts are not added to the corpus
    World world;
    std::optional<store::Batch> batch;
    for (const auto& record : records) {
        world.now_us += 1000;
        if (record.expire_leases) {
            commit(world, batch);
            world.now_us += k_lease_us + 1;
            auto leases = world.store.begin();
            world.handler.expire_leases(leases, world.now_us);
            leases.commit();
        }
        if (!batch) batch.emplace(world.store.begin());
        run_request(world, record, *batch);
        if (record.end_batch) commit(world, batch);
    }
    commit(world, batch);
    if (world.store.last_seq() == 0) return 0;
    const auto verified = world.store.verify_projections(10);
    if (!verified.differences.empty()) {
        std::string lines;
        for (const auto& line : verified.differences) lines += "\n  " + line;
        fuzz::fail("the projections differ from a rebuild of the log:" + lines);
    }
    return 0;
}
