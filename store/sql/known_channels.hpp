// Which channels exist as of the open batch: the publish path asks for every
// message, so the answer is remembered. The Projector keeps it true (it sees
// every channel.deleted, and forgets everything when a batch rolls back: the
// channels it created never existed); the message queries fill it.
// Concurrency: single-threaded, like the Store that owns it.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_set>

namespace botbus::store {

class KnownChannels {
public:
    bool contains(const std::string& name) const { return m_names.contains(name); }
    void remember(const std::string& name) {
        // Bounded: a bus with more channels than this simply queries again.
        if (m_names.size() >= k_max_names) m_names.clear();
        m_names.insert(name);
    }
    void forget(const std::string& name) { m_names.erase(name); }
    void forget_all() { m_names.clear(); }

private:
    static constexpr std::size_t k_max_names = 100000;
    std::unordered_set<std::string> m_names;
};

}  // namespace botbus::store
