#include "daemon/cli_output.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <ostream>
#include <sstream>

namespace botbus::cli {
namespace {

std::string hex_byte(unsigned char c) {
    static constexpr char k_digits[] = "0123456789abcdef";
    return {'\\', 'x', k_digits[c >> 4U], k_digits[c & 0xfU]};
}

std::string dump(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string body_text(const bus::PackedValue& body) {
    const auto value = value_to_json(body);
    return escape_text(value.is_string() ? value.get_ref<const std::string&>() : dump(value));
}

}  // namespace

Json value_to_json(const bus::PackedValue& value) {
    auto json = Json::from_msgpack(value.bytes.begin(), value.bytes.end(), true, false);
    if (!json.is_discarded()) return json;
    try {
        const auto handle = msgpack::unpack(value.bytes.data(), value.bytes.size());
        std::ostringstream text;
        text << handle.get();
        return text.str();
    } catch (const std::exception&) {
        return "(unreadable msgpack)";
    }
}

Json value_to_json(const msgpack::object& value) { return value_to_json(bus::pack_value(value)); }

Json reply_fields(const bus::Reply& reply) {
    Json fields = Json::object();
    const auto& root = reply.handle.get();
    if (root.type != msgpack::type::MAP) return fields;
    for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) continue;
        const std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
        if (key == "ok" || key == "id") continue;
        fields[key] = value_to_json(kv.val);
    }
    return fields;
}

std::string human_duration(std::uint64_t us) {
    if (us < 1000) return std::to_string(us) + " us";
    if (us < 1'000'000) return std::to_string(us / 1000) + " ms";
    const auto seconds = us / 1'000'000;
    const auto days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60, secs = seconds % 60;
    char text[64];
    if (days > 0) {
        std::snprintf(text, sizeof text, "%llu d %02llu h %02llu min", static_cast<unsigned long long>(days),
                      static_cast<unsigned long long>(hours), static_cast<unsigned long long>(minutes));
    } else if (hours > 0) {
        std::snprintf(text, sizeof text, "%llu h %02llu min %02llu s", static_cast<unsigned long long>(hours),
                      static_cast<unsigned long long>(minutes), static_cast<unsigned long long>(secs));
    } else if (minutes > 0) {
        std::snprintf(text, sizeof text, "%llu min %02llu s", static_cast<unsigned long long>(minutes),
                      static_cast<unsigned long long>(secs));
    } else {
        std::snprintf(text, sizeof text, "%llu.%03llu s", static_cast<unsigned long long>(secs),
                      static_cast<unsigned long long>(us / 1000 % 1000));
    }
    return text;
}

std::string human_size(std::uint64_t bytes) {
    if (bytes < 1024) return std::to_string(bytes) + " B";
    static constexpr const char* k_units[] = {"KiB", "MiB", "GiB", "TiB"};
    auto value = static_cast<double>(bytes) / 1024;
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < std::size(k_units)) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, k_units[unit]);
    return text;
}

std::string format_timestamp(std::int64_t ts_us) {
    auto seconds = ts_us / 1'000'000;
    auto micros = ts_us % 1'000'000;
    if (micros < 0) {
        micros += 1'000'000;
        --seconds;
    }
    const auto time = static_cast<std::time_t>(seconds);
    std::tm parts{};
    if (!gmtime_r(&time, &parts)) return std::to_string(ts_us) + "us";
    char date[32];
    const auto length = std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &parts);
    char millis[8];
    std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(micros / 1000));
    return std::string(date, length) + millis;
}

std::string escape_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            out += hex_byte(c);
        } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                   static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
            // U+0080..U+009F: C1 controls (CSI among them) in UTF-8.
            out += hex_byte(c) + hex_byte(static_cast<unsigned char>(text[i + 1]));
            ++i;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

std::string message_line(const bus::Message& m) {
    std::string line = "[seq " + std::to_string(m.seq) + ' ';
    if (!m.channel) line += '@' + escape_text(m.to.value_or("")) + ' ';
    line += '#' + std::to_string(m.stream_seq) + ' ' + format_timestamp(m.ts_us) + "] " + escape_text(m.from) + " (" +
            escape_text(m.type);
    if (m.reply_to) line += ", reply to " + std::to_string(*m.reply_to);
    return line + "): " + body_text(m.body);
}

Json message_json(const bus::Message& m) {
    Json json = Json::object();
    json["seq"] = m.seq;
    if (m.channel) {
        json["channel_seq"] = m.stream_seq;
    } else {
        json["mailbox_seq"] = m.stream_seq;
    }
    json["ts"] = m.ts_us;
    json["from"] = m.from;
    if (m.channel) {
        json["channel"] = *m.channel;
    } else {
        json["to"] = m.to.value_or("");
    }
    json["type"] = m.type;
    json["body"] = value_to_json(m.body);
    json["reply_to"] = m.reply_to ? Json(*m.reply_to) : Json(nullptr);
    return json;
}

std::string table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        if (widths.size() < row.size()) widths.resize(row.size(), 0);
        for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
    }
    std::string out;
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t c = 0; c < row.size(); ++c) {
            line += row[c];
            if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + '\n';
    }
    return out;
}

void Printer::line(std::string_view text) { m_out << text << '\n'; }

void Printer::object(const Json& value) { m_out << dump(value) << '\n'; }

void Printer::message(const bus::Message& message) {
    if (m_json) {
        object(message_json(message));
    } else {
        line(message_line(message));
    }
}

void Printer::flush() { m_out.flush(); }

}  // namespace botbus::cli
