#include "bus/protocol/feed_events.hpp"

namespace botbus::bus {

std::string encode_feed_event(const ChannelEvent& event) { return encode_shape(event); }
std::string encode_feed_event(const DeadLetterEvent& event) { return encode_shape(event); }
std::string encode_feed_event(const WorkflowEvent& event) { return encode_shape(event, event.data.bytes.size() + 160); }
std::string encode_feed_event(const SyncMarker& marker) { return encode_shape(marker, 64); }

}  // namespace botbus::bus
