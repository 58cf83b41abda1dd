#include "store/sql/settlements.hpp"

#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;

Settlements::Settlements(sql::Connection& db, const Sql& sql)
    : m_floor(db, sql.floor),
      m_raise_floor(db, sql.raise_floor),
      m_insert_settled(db, sql.insert_settled),
      m_is_settled(db, sql.is_settled),
      m_delete_upto(db, sql.delete_upto),
      m_next_message(db,
                     "SELECT seq FROM events WHERE stream = ? AND seq > ?"
                     " AND type IN ('message.sent', 'message.published') ORDER BY seq LIMIT 1") {}

int Settlements::bind_key(sql::Statement& statement, const std::vector<std::string>& key) {
    int index = 1;
    for (const auto& part : key) statement.bind(index++, part);
    return index;
}

Seq Settlements::floor(const std::vector<std::string>& key) {
    ResetOnExit reset{m_floor};
    bind_key(m_floor, key);
    return m_floor.executeStep() ? static_cast<Seq>(m_floor.getColumn(0).getInt64()) : 0;
}

void Settlements::raise_floor(const std::vector<std::string>& key, Seq upto, Seq event_seq) {
    const int next = bind_key(m_raise_floor, key);
    m_raise_floor.bind(next, static_cast<std::int64_t>(upto));
    m_raise_floor.bind(next + 1, static_cast<std::int64_t>(event_seq));
    exec_and_reset(m_raise_floor);
}

void Settlements::settle(const std::vector<std::string>& key, Seq message_seq, std::string_view outcome,
                         Seq event_seq) {
    if (message_seq <= floor(key)) return;
    const int next = bind_key(m_insert_settled, key);
    m_insert_settled.bind(next, static_cast<std::int64_t>(message_seq));
    m_insert_settled.bind(next + 1, std::string(outcome));
    exec_and_reset(m_insert_settled);
    raise_floor(key, 0, event_seq);  // records the event on the reader's row
}

void Settlements::compact(const std::vector<std::string>& key, const std::string& stream, Seq event_seq) {
    const auto start = floor(key);
    auto at = start;
    for (;;) {
        Seq next = 0;
        {
            ResetOnExit reset{m_next_message};
            m_next_message.bind(1, stream);
            m_next_message.bind(2, static_cast<std::int64_t>(at));
            if (!m_next_message.executeStep()) break;
            next = static_cast<Seq>(m_next_message.getColumn(0).getInt64());
        }
        ResetOnExit reset{m_is_settled};
        const int index = bind_key(m_is_settled, key);
        m_is_settled.bind(index, static_cast<std::int64_t>(next));
        if (!m_is_settled.executeStep()) break;
        at = next;
    }
    if (at != start) raise_floor(key, at, event_seq);
    const int index = bind_key(m_delete_upto, key);
    m_delete_upto.bind(index, static_cast<std::int64_t>(floor(key)));
    exec_and_reset(m_delete_upto);
}

}  // namespace botbus::store
