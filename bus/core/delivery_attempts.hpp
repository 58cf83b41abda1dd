// Delivery attempts written beside the log (Batch::record_deliveries), so
// that what --max-deliveries counts survives a restart (Deliveries'
// resume_counts reads them back). Cheap by shape: per reader, its first
// deliveries are one mark (`upto`), and only its redeliveries are rows of
// their own. The server writes them in the transaction of its next batch of
// requests (group commit), or in a small batch of its own when none comes
// soon.
#pragma once

#include <vector>

#include "bus/core/deliveries.hpp"
#include "store/store.hpp"

namespace botbus::bus {

// Writes `attempts` in the batch's transaction, one record per reader.
void record_delivery_attempts(store::Batch& batch, const std::vector<DeliveryAttempt>& attempts);

}  // namespace botbus::bus
