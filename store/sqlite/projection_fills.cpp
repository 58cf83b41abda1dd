#include "store/sqlite/projection_fills.hpp"

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>

#include "store/event.hpp"
#include "store/payloads.hpp"

namespace botbus::store {
namespace {

std::size_t fill_mailbox_expiries(SQLite::Database& db) {
    SQLite::Statement sent(db,
                           "SELECT e.seq, e.ts_us, e.payload FROM events e WHERE e.type = ?1"
                           " AND e.seq > COALESCE((SELECT acked_seq FROM bot_mailboxes"
                           "   WHERE bot_id = substr(e.stream, 4)), 0)"
                           " AND NOT EXISTS (SELECT 1 FROM mailbox_settled s"
                           "   WHERE s.bot_id = substr(e.stream, 4) AND s.seq = e.seq)"
                           " ORDER BY e.seq");
    sent.bindNoCopy(1, event_type_name(EventType::message_sent).data());
    SQLite::Statement add(db, "INSERT INTO mailbox_expiries (bot_id, seq, expires_at) VALUES (?1, ?2, ?3)"
                              " ON CONFLICT (bot_id, seq) DO NOTHING");
    MessageDecoder decoder;
    std::size_t added = 0;
    while (sent.executeStep()) {
        const auto column = sent.getColumn(2);
        const auto fields = decoder.decode(EventType::message_sent,
                                           std::string_view(static_cast<const char*>(column.getBlob()),
                                                            static_cast<std::size_t>(column.getBytes())));
        const auto expiry = fields.expiry(sent.getColumn(1).getInt64());
        if (!expiry || !fields.to) continue;
        add.bind(1, std::string(*fields.to));
        add.bind(2, sent.getColumn(0).getInt64());
        add.bind(3, *expiry);
        add.exec();
        add.reset();
        ++added;
    }
    return added;
}

}  // namespace

void fill_projections(SQLite::Database& db) {
    if (!db.execAndGet("SELECT EXISTS (SELECT 1 FROM projection_fills WHERE name = 'mailbox_expiries')").getInt()) {
        return;
    }
    SQLite::Transaction transaction(db);
    const auto added = fill_mailbox_expiries(db);
    db.exec("DELETE FROM projection_fills WHERE name = 'mailbox_expiries'");
    transaction.commit();
    if (added > 0) spdlog::info("filled mailbox_expiries from the log: {} direct messages with a time to live", added);
}

}  // namespace botbus::store
