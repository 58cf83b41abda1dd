#include "bus/core/delivery_attempts.hpp"

#include <algorithm>
#include <map>

namespace botbus::bus {

void record_delivery_attempts(store::Batch& batch, const std::vector<DeliveryAttempt>& attempts) {
    std::map<Reader, store::DeliveryRecord> by_reader;
    for (const auto& attempt : attempts) {
        auto& record = by_reader[attempt.reader];
        record.bot = attempt.reader.bot;
        record.channel = attempt.reader.channel;
        if (attempt.deliveries <= 1) {
            record.upto = std::max<store::Seq>(record.upto.value_or(0), attempt.seq);
        } else {
            record.counts.emplace_back(attempt.seq, attempt.deliveries);
        }
    }
    for (const auto& [reader, record] : by_reader) batch.record_deliveries(record);
}

}  // namespace botbus::bus
