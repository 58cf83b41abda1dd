// botbus-floor: the least a server built from botbus's parts can spend per
// acknowledged publish, for botbus-bench to measure in botbusd's place
// (`botbus-bench --botbusd 'build/bench/botbus-floor'`, with BOTBUS_FLOOR
// naming the floor). It starts like botbusd (the same ready line, the same
// options, the unknown ones ignored), answers hello and publish as botbusd
// does on the wire, and does nothing else:
//   codec   one ZeroMQ ROUTER in one thread: receive a batch of requests,
//           decode each with botbus's codec, publish its body once on a PUB
//           socket (botbusd's feed event), encode its reply, send it;
//   sqlite  the same, plus one row per publish (seq, stream, stream_seq,
//           the request frame) in a WAL-mode SQLite table with the
//           (stream, seq) index botbusd keeps, one transaction per batch,
//           committed with synchronous=FULL (an fsync per commit) before
//           the replies go out: durable before visible, nothing more;
//   blocks  as sqlite, but one row per batch (its first seq and the batch's
//           request frames as one msgpack array): the record-batch layout
//           Kafka and NATS use, at its cheapest.
// What these floors cost per message, beside botbusd's own figure, says how
// much of botbusd's CPU is its own logic and how much is the transport and
// the storage engine it is built on (docs/PERFORMANCE.md).
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bus/protocol/codec.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

constexpr std::size_t k_max_batch = 256;
constexpr std::size_t k_max_frame = 1 << 20;

struct Storage {
    explicit Storage(const std::string& path)
        : db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE) {
        db.exec("PRAGMA journal_mode=WAL");
        db.exec("PRAGMA synchronous=FULL");
        db.exec(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL,"
            " stream_seq INTEGER NOT NULL, payload BLOB NOT NULL) STRICT");
        db.exec("CREATE INDEX IF NOT EXISTS events_by_stream ON events(stream, seq)");
        insert = std::make_unique<SQLite::Statement>(
            db, "INSERT INTO events (seq, stream, stream_seq, payload) VALUES (?, ?, ?, ?)");
    }
    SQLite::Database db;
    std::unique_ptr<SQLite::Statement> insert;
};

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string bound_endpoint(zmq::socket_t& socket, const std::string& endpoint) {
    socket.bind(endpoint);
    return socket.get(zmq::sockopt::last_endpoint);
}

}  // namespace

int main(int argc, char** argv) {
    namespace po = boost::program_options;
    std::string data_dir, command_endpoint, feed_endpoint;
    po::options_description options("botbus-floor");
    options.add_options()("data-dir", po::value(&data_dir)->required(), "where the sqlite floor keeps its file")(
        "command-endpoint", po::value(&command_endpoint)->default_value("tcp://127.0.0.1:*"), "ROUTER endpoint")(
        "feed-endpoint", po::value(&feed_endpoint)->default_value("tcp://127.0.0.1:*"), "PUB endpoint");
    po::variables_map vm;
    try {
        // botbusd's other options (durability, log level) are accepted and ignored.
        po::store(po::command_line_parser(argc, argv).options(options).allow_unregistered().run(), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "botbus-floor: " << e.what() << '\n' << options;
        return 2;
    }
    const char* floor_env = std::getenv("BOTBUS_FLOOR");
    const std::string floor = floor_env ? floor_env : "codec";
    if (floor != "codec" && floor != "sqlite" && floor != "blocks") {
        std::cerr << "botbus-floor: BOTBUS_FLOOR must be codec, sqlite or blocks, not " << floor << '\n';
        return 2;
    }
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);

    std::optional<Storage> storage;
    const bool blocks = floor == "blocks";
    if (floor != "codec") {
        std::filesystem::create_directories(data_dir);
        storage.emplace(data_dir + "/floor.db");
    }
    zmq::context_t zmq(1);
    zmq::socket_t router(zmq, zmq::socket_type::router);
    zmq::socket_t pub(zmq, zmq::socket_type::pub);
    router.set(zmq::sockopt::linger, 0);
    // The clients bound what is in flight; a ROUTER at its HWM drops replies.
    router.set(zmq::sockopt::sndhwm, 0);
    pub.set(zmq::sockopt::linger, 0);
    const auto command = bound_endpoint(router, command_endpoint);
    const auto feed = bound_endpoint(pub, feed_endpoint);
    std::printf("botbusd ready command=%s feed=%s\n", command.c_str(), feed.c_str());
    std::fflush(stdout);

    std::uint64_t seq = 0;
    std::vector<std::vector<zmq::message_t>> batch;
    std::vector<std::string> replies;
    msgpack::sbuffer block;
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    while (!g_stop) {
        try {
            zmq::poll(&item, 1, std::chrono::milliseconds(100));
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) continue;
            throw;
        }
        for (;;) {
            batch.clear();
            replies.clear();
            while (batch.size() < k_max_batch) {
                std::vector<zmq::message_t> parts;
                if (!zmq::recv_multipart(router, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
                batch.push_back(std::move(parts));
            }
            if (batch.empty()) break;
            std::optional<SQLite::Transaction> tx;
            if (storage) tx.emplace(storage->db);
            const auto block_first = seq + 1;
            block.clear();
            msgpack::packer<msgpack::sbuffer> block_packer(block);
            if (blocks) block_packer.pack_array(static_cast<std::uint32_t>(batch.size()));
            for (auto& parts : batch) {
                const auto body = parts.back().to_string_view();
                auto decoded = botbus::bus::decode_request(body, k_max_frame);
                auto* envelope = std::get_if<botbus::bus::Envelope>(&decoded);
                if (!envelope) {
                    replies.push_back(botbus::bus::encode_error_reply(
                        std::get<botbus::bus::DecodeFailure>(decoded).id, std::get<botbus::bus::DecodeFailure>(decoded).error));
                    continue;
                }
                if (auto* publish = std::get_if<botbus::bus::PublishRequest>(&envelope->request)) {
                    ++seq;
                    if (blocks) {
                        block_packer.pack_bin(static_cast<std::uint32_t>(body.size()));
                        block_packer.pack_bin_body(body.data(), static_cast<std::uint32_t>(body.size()));
                    } else if (storage) {
                        auto& insert = *storage->insert;
                        insert.bind(1, static_cast<std::int64_t>(seq));
                        insert.bind(2, publish->channel);
                        insert.bind(3, static_cast<std::int64_t>(seq));
                        insert.bindNoCopy(4, body.data(), static_cast<int>(body.size()));
                        insert.exec();
                        insert.reset();
                    }
                    pub.send(zmq::buffer(publish->channel), zmq::send_flags::sndmore);
                    pub.send(zmq::buffer(body), zmq::send_flags::dontwait);
                    replies.push_back(botbus::bus::encode_reply(
                        envelope->id, botbus::bus::PublishReply{seq, seq, now_us(), false}));
                } else if (auto* hello = std::get_if<botbus::bus::HelloRequest>(&envelope->request)) {
                    replies.push_back(botbus::bus::encode_reply(envelope->id, botbus::bus::HelloReply{hello->bot, 1, 0, seq, "floor"}));
                } else {
                    replies.push_back(botbus::bus::encode_error_reply(
                        envelope->id, {botbus::bus::Errc::unknown_op, "botbus-floor answers hello and publish only"}));
                }
            }
            if (blocks && seq >= block_first) {
                auto& insert = *storage->insert;
                insert.bind(1, static_cast<std::int64_t>(block_first));
                insert.bind(2, "tp");
                insert.bind(3, static_cast<std::int64_t>(block_first));
                insert.bindNoCopy(4, block.data(), static_cast<int>(block.size()));
                insert.exec();
                insert.reset();
            }
            if (tx) tx->commit();  // synchronous=FULL: durable when this returns
            for (std::size_t i = 0; i < batch.size(); ++i) {
                auto& parts = batch[i];
                for (std::size_t p = 0; p + 1 < parts.size(); ++p) router.send(parts[p], zmq::send_flags::sndmore);
                router.send(zmq::buffer(replies[i]), zmq::send_flags::dontwait);
            }
        }
    }
    return 0;
}
