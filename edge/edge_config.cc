#include "edge/edge_config.h"

#include <fmt/core.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <variant>

// toml++ reports parse errors as values only when built without exceptions.
// Debian's libtomlplusplus.so (which pkg-config's -DTOML_HEADER_ONLY=0 links)
// holds only the exceptions ABI (toml::v3::ex), so the no-exception parser
// (toml::v3::noex) is compiled here, header-only. This is the only file that
// includes toml++.
#ifndef TOML_EXCEPTIONS
#define TOML_EXCEPTIONS 0
#endif
#undef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 1
#undef TOML_SHARED_LIB
#include <toml++/toml.h>
static_assert(!TOML_EXCEPTIONS, "mf-edge throws no exceptions: build toml++ with TOML_EXCEPTIONS=0");

#include "common/listen_socket.h"
#include "common/log.h"
#include "edge/sdk_message.h"

namespace mf::edge {
namespace {

using CountField = uint32_t EdgeConfig::*;
using SwitchField = bool EdgeConfig::*;
using TextField = std::string EdgeConfig::*;
using ListField = std::vector<std::string> EdgeConfig::*;
using Field = std::variant<CountField, SwitchField, TextField, ListField>;

// How a text value is checked.
enum class Text : uint8_t {
  address,     // HOST:PORT as parse_socket_address reads it; empty disables the listener
  file,        // a path (read at start, not here); empty leaves it unset, but an empty flag is a mistake
  ws_path,     // an absolute request path other than /healthz
  identifier,  // spec section 2 characters; empty in the file: the default
  log_level,   // a log::Level name
  origin,      // each list element: a serialized origin, compared exactly
};

// One operator-facing setting: where it lives in the file, its flag, how it
// is checked. The file reader, the flag reader, describe() and the usage
// text all work from this one table, so they cannot disagree.
struct Setting {
  std::string_view table = {};  // TOML table; empty for a flag that is not a setting
  std::string_view key = {};
  std::string_view flag = {};  // empty: the file only
  std::string_view metavar = {};
  std::string_view help = {};
  Field field;
  Text text = Text::file;
  uint32_t low = 0;           // counts: accepted range, inclusive
  uint32_t high = UINT32_MAX;
  bool zero_allowed = false;  // counts: 0 (automatic or unlimited) besides low..high
};

constexpr Setting settings[] = {
    {.table = "edge", .key = "id", .flag = "--edge-id", .metavar = "ID",
     .help = "this edge's id, sent in `joined` (default HOSTNAME-PID)", .field = &EdgeConfig::edge_id,
     .text = Text::identifier},
    {.table = "edge", .key = "shards", .flag = "--shards", .metavar = "N",
     .help = "shard threads, one per core; 0: one per online CPU", .field = &EdgeConfig::shards, .high = 256},
    {.table = "edge", .key = "log_level", .flag = "--log-level", .metavar = "LEVEL",
     .help = "error|warning|notice|info|debug", .field = &EdgeConfig::log_level, .text = Text::log_level},

    {.table = "listen", .key = "public", .flag = "--listen", .metavar = "ADDR:PORT",
     .help = "public WebSocket listener, wss when [tls] is set; empty: none", .field = &EdgeConfig::listen,
     .text = Text::address},
    {.table = "listen", .key = "plain", .flag = "--plain-listen", .metavar = "ADDR:PORT",
     .help = "second listener, always plain ws (behind the ingress); empty: none",
     .field = &EdgeConfig::plain_listen, .text = Text::address},
    {.table = "listen", .key = "proxy_protocol", .flag = "--proxy-protocol", .metavar = "",
     .help = "expect a PROXY v2 header on the plain listener", .field = &EdgeConfig::proxy_protocol},
    {.table = "listen", .key = "websocket_path", .flag = "--ws-path", .metavar = "PATH",
     .help = "the WebSocket path", .field = &EdgeConfig::websocket_path, .text = Text::ws_path},

    {.table = "tls", .key = "certificate", .flag = "--tls-cert", .metavar = "FILE",
     .help = "certificate chain (PEM); with the key, the public listener serves wss",
     .field = &EdgeConfig::tls_certificate, .text = Text::file},
    {.table = "tls", .key = "key", .flag = "--tls-key", .metavar = "FILE",
     .help = "private key (PEM); omit both for plain ws", .field = &EdgeConfig::tls_key, .text = Text::file},

    {.table = "limits", .key = "max_connections_per_shard", .flag = "--max-connections-per-shard", .metavar = "N",
     .help = "connections per shard; 0: the descriptor table the kernel allows (RLIMIT_NOFILE)",
     .field = &EdgeConfig::max_connections_per_shard, .low = 16, .high = 1u << 20, .zero_allowed = true},
    {.table = "limits", .key = "max_connections", .flag = "--max-connections", .metavar = "N",
     .help = "connections edge-wide, then 503; 0: unlimited", .field = &EdgeConfig::max_connections},
    {.table = "limits", .key = "max_message_bytes", .flag = "--max-message-bytes", .metavar = "N",
     .help = "WebSocket message limit, close 1009 above", .field = &EdgeConfig::max_message_bytes, .low = 256,
     .high = 1u << 24},
    {.table = "limits", .key = "per_source_connections", .flag = "--per-source-connections", .metavar = "N",
     .help = "open connections per client address, then 429; 0: unlimited",
     .field = &EdgeConfig::per_source_connections},
    {.table = "limits", .key = "per_source_rate", .flag = "--per-source-rate", .metavar = "N",
     .help = "new connections per second per client address, then 429; 0: unlimited",
     .field = &EdgeConfig::per_source_rate, .high = 1000000},
    {.table = "limits", .key = "per_source_burst", .field = &EdgeConfig::per_source_burst, .low = 1,
     .high = 1000000},
    {.table = "limits", .key = "messages_per_second", .flag = "--messages-per-second", .metavar = "N",
     .help = "messages per second per connection, then rate-limited", .field = &EdgeConfig::messages_per_second,
     .low = 1, .high = 1000000},
    {.table = "limits", .key = "message_burst", .flag = "--message-burst", .metavar = "N",
     .help = "messages a connection may send at once", .field = &EdgeConfig::message_burst, .low = 1,
     .high = 1000000},
    // ErrorBudget counts in bytes: at most 254 errors per window.
    {.table = "limits", .key = "error_limit", .field = &EdgeConfig::error_limit, .low = 1, .high = 254},
    {.table = "limits", .key = "error_window_ms", .field = &EdgeConfig::error_window_ms, .low = 100,
     .high = 3600000},
    {.table = "limits", .key = "send_queue_bytes", .field = &EdgeConfig::send_queue_bytes, .low = 4096,
     .high = 1u << 30},

    {.table = "timeouts", .key = "handshake_ms", .flag = "--handshake-timeout-ms", .metavar = "N",
     .help = "TLS + HTTP upgrade deadline", .field = &EdgeConfig::handshake_timeout_ms, .low = 100,
     .high = 600000},
    {.table = "timeouts", .key = "heartbeat_ms", .flag = "--heartbeat-ms", .metavar = "N",
     .help = "ping after N ms without traffic; close 4002 at 2.5 N", .field = &EdgeConfig::heartbeat_ms,
     .low = 100, .high = 600000},
    {.table = "timeouts", .key = "drain_ms", .flag = "--drain-ms", .metavar = "N",
     .help = "on drain, clients are told to reconnect spread over N ms", .field = &EdgeConfig::drain_ms,
     .high = 600000},
    {.table = "timeouts", .key = "drain_deadline_ms", .field = &EdgeConfig::drain_deadline_ms, .low = 1000,
     .high = 3600000},

    {.table = "admission", .key = "allowed_origins", .flag = "--allowed-origin", .metavar = "ORIGIN",
     .help = "accepted Origin, exactly (repeatable; replaces the file's list); none: any",
     .field = &EdgeConfig::allowed_origins, .text = Text::origin},
    {.table = "admission", .key = "require_origin", .field = &EdgeConfig::require_origin},
    {.table = "admission", .key = "jwt_secret_file", .flag = "--jwt-secret-file", .metavar = "FILE",
     .help = "HS256 key; when set, ?token= must be a valid JWT", .field = &EdgeConfig::jwt_secret_file,
     .text = Text::file},

    {.table = "policy", .key = "file", .flag = "--policy", .metavar = "FILE",
     .help = "JSON policy document; none: built-in defaults", .field = &EdgeConfig::policy_file,
     .text = Text::file},
    {.table = "policy", .key = "watch", .field = &EdgeConfig::policy_watch},

    {.table = "admin", .key = "listen", .flag = "--admin", .metavar = "ADDR:PORT",
     .help = "admin listener (/metrics); empty: disabled", .field = &EdgeConfig::admin_listen,
     .text = Text::address},

    {.flag = "--check-config", .help = "validate settings, certificates and kernel features, print the "
                                       "effective configuration, exit",
     .field = &EdgeConfig::check_config},
};
constexpr size_t setting_count = std::size(settings);

const Setting& setting_at(TextField field) {
  for (const Setting& setting : settings)
    if (auto* text = std::get_if<TextField>(&setting.field); text && *text == field) return setting;
  std::abort();
}
const Setting& setting_at(CountField field) {
  for (const Setting& setting : settings)
    if (auto* count = std::get_if<CountField>(&setting.field); count && *count == field) return setting;
  std::abort();
}
const Setting& setting_at(SwitchField field) {
  for (const Setting& setting : settings)
    if (auto* flag = std::get_if<SwitchField>(&setting.field); flag && *flag == field) return setting;
  std::abort();
}

// Where a setting's value came from, so an error can point at it.
struct Origin {
  enum class Kind : uint8_t { built_in, file, flag } kind = Kind::built_in;
  uint32_t line = 0;
};

struct Builder {
  EdgeConfig config;
  Origin origins[setting_count];
  std::string file_name;

  Origin& origin(const Setting& setting) { return origins[&setting - settings]; }
  const Origin& origin(const Setting& setting) const { return origins[&setting - settings]; }
};

// A value from the command line or the file, quoted for an error line:
// control bytes escaped so the message stays one line.
std::string printable(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) out += fmt::format("\\x{:02x}", byte);
    else out += c;
  }
  out += '\'';
  return out;
}

// "[tls] key (--tls-key)": a setting named without a location.
std::string name(const Setting& setting) {
  if (setting.table.empty()) return std::string(setting.flag);
  if (setting.flag.empty()) return fmt::format("[{}] {}", setting.table, setting.key);
  return fmt::format("[{}] {} ({})", setting.table, setting.key, setting.flag);
}

// Where the current value came from: "FILE:LINE: [tls] key", "--tls-key", or
// "[tls] key" for a default.
std::string where(const Builder& builder, const Setting& setting) {
  const Origin& origin = builder.origin(setting);
  switch (origin.kind) {
    case Origin::Kind::file: return fmt::format("{}:{}: [{}] {}", builder.file_name, origin.line, setting.table, setting.key);
    case Origin::Kind::flag: return std::string(setting.flag);
    case Origin::Kind::built_in: break;
  }
  return setting.table.empty() ? std::string(setting.flag) : fmt::format("[{}] {}", setting.table, setting.key);
}

ConfigError error_at(const Builder& builder, const Setting& setting, std::string_view problem) {
  bool flag = builder.origin(setting).kind == Origin::Kind::flag;
  return ConfigError{fmt::format("{}: {}", where(builder, setting), problem), flag ? 2 : 1};
}

std::string range_text(const Setting& setting) {
  return setting.zero_allowed ? fmt::format("0 or {}..{}", setting.low, setting.high)
                              : fmt::format("{}..{}", setting.low, setting.high);
}

bool in_range(const Setting& setting, uint64_t value) {
  return (setting.zero_allowed && value == 0) || (value >= setting.low && value <= setting.high);
}

// RFC 6454 serialization as browsers send it: scheme "://" host [":" port],
// lowercase, no path. Compared byte for byte with the Origin header, so
// anything a browser would never send can never match and is refused here.
bool is_origin(std::string_view text) {
  size_t separator = text.find("://");
  if (separator == std::string_view::npos || separator == 0) return false;
  std::string_view scheme = text.substr(0, separator);
  if (scheme.front() < 'a' || scheme.front() > 'z') return false;
  for (char c : scheme)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')) return false;
  std::string_view rest = text.substr(separator + 3);
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    host = rest.substr(1, close - 1);
    for (char c : host)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.')) return false;
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    port = rest.empty() ? rest : rest.substr(1);
    if (!rest.empty() && port.empty()) return false;
  } else {
    size_t colon = rest.find(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    for (char c : host)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  }
  if (!port.empty()) {
    unsigned number = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (ec != std::errc() || end != port.data() + port.size() || number == 0 || number > 65535 || port.front() == '0')
      return false;
  }
  return true;
}

// Checks a text value; the error is the problem without the location.
std::expected<void, std::string> check_text(Text kind, std::string_view value, bool from_flag) {
  switch (kind) {
    case Text::address: {
      if (value.empty()) return {};
      auto address = parse_socket_address(value);
      if (!address) return std::unexpected(address.error());
      return {};
    }
    case Text::file:
      if (value.empty() && from_flag) return std::unexpected("needs a file name");
      return {};
    case Text::ws_path:
      if (value.empty() || value.front() != '/') return std::unexpected(fmt::format("{} must start with '/'", printable(value)));
      if (value.size() > 256) return std::unexpected("must be at most 256 bytes");
      for (char c : value)
        if (c <= ' ' || c > '~' || c == '?' || c == '#')
          return std::unexpected(fmt::format("{} must be printable ASCII without spaces, '?' or '#'", printable(value)));
      if (value == "/healthz") return std::unexpected("'/healthz' is the health check's path");
      return {};
    case Text::identifier:
      if (value.empty()) {
        if (from_flag) return std::unexpected("needs a value");
        return {};
      }
      if (!is_valid_identifier(value))
        return std::unexpected(fmt::format("{} must be 1..128 bytes of [A-Za-z0-9._:-]", printable(value)));
      return {};
    case Text::log_level: {
      log::Level level;
      if (!log::parse_level(value, level))
        return std::unexpected(fmt::format("{} is not one of error, warning, notice, info, debug", printable(value)));
      return {};
    }
    case Text::origin:
      if (!is_origin(value))
        return std::unexpected(
            fmt::format("{} is not an origin (scheme://host[:port], lowercase, no path)", printable(value)));
      return {};
  }
  return {};
}

std::string_view node_type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

uint32_t line_of(const toml::node& node) { return static_cast<uint32_t>(node.source().begin.line); }

// A file value; on error the location is the value's line.
std::expected<void, ConfigError> set_from_file(Builder& builder, const Setting& setting, const toml::node& node) {
  builder.origin(setting) = Origin{Origin::Kind::file, line_of(node)};
  auto fail = [&](std::string_view problem) { return std::unexpected(error_at(builder, setting, problem)); };
  EdgeConfig& config = builder.config;
  if (auto* count = std::get_if<CountField>(&setting.field)) {
    const auto* integer = node.as_integer();
    if (!integer) return fail(fmt::format("must be an integer (got {})", node_type_name(node.type())));
    int64_t value = integer->get();
    if (value < 0 || !in_range(setting, static_cast<uint64_t>(value)))
      return fail(fmt::format("must be {} (got {})", range_text(setting), value));
    config.*(*count) = static_cast<uint32_t>(value);
  } else if (auto* flag = std::get_if<SwitchField>(&setting.field)) {
    const auto* boolean = node.as_boolean();
    if (!boolean) return fail(fmt::format("must be true or false (got {})", node_type_name(node.type())));
    config.*(*flag) = boolean->get();
  } else if (auto* text = std::get_if<TextField>(&setting.field)) {
    const auto* string = node.as_string();
    if (!string) return fail(fmt::format("must be a string (got {})", node_type_name(node.type())));
    if (auto ok = check_text(setting.text, string->get(), false); !ok) return fail(ok.error());
    config.*(*text) = string->get();
  } else if (auto* list = std::get_if<ListField>(&setting.field)) {
    const auto* array = node.as_array();
    if (!array) return fail(fmt::format("must be an array of strings (got {})", node_type_name(node.type())));
    std::vector<std::string> values;
    for (const toml::node& element : *array) {
      builder.origin(setting).line = line_of(element);
      const auto* string = element.as_string();
      if (!string) return fail(fmt::format("must be an array of strings (got {} in it)", node_type_name(element.type())));
      if (auto ok = check_text(setting.text, string->get(), false); !ok) return fail(ok.error());
      values.push_back(string->get());
    }
    builder.origin(setting).line = line_of(node);
    config.*(*list) = std::move(values);
  }
  return {};
}

// A flag's value; `value` is absent for a switch given without "=".
std::expected<void, ConfigError> set_from_flag(Builder& builder, const Setting& setting,
                                               std::optional<std::string_view> value) {
  bool list_continues = builder.origin(setting).kind == Origin::Kind::flag;
  builder.origin(setting) = Origin{Origin::Kind::flag, 0};
  auto fail = [&](std::string_view problem) { return std::unexpected(error_at(builder, setting, problem)); };
  EdgeConfig& config = builder.config;
  if (auto* count = std::get_if<CountField>(&setting.field)) {
    uint32_t number = 0;
    auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), number);
    if (value->empty() || ec != std::errc() || end != value->data() + value->size())
      return fail(fmt::format("{} is not a number", printable(*value)));
    if (!in_range(setting, number)) return fail(fmt::format("must be {} (got {})", range_text(setting), number));
    config.*(*count) = number;
  } else if (auto* flag = std::get_if<SwitchField>(&setting.field)) {
    if (!value || *value == "true") config.*(*flag) = true;
    else if (*value == "false") config.*(*flag) = false;
    else return fail(fmt::format("{} is not true or false", printable(*value)));
  } else if (auto* text = std::get_if<TextField>(&setting.field)) {
    if (auto ok = check_text(setting.text, *value, true); !ok) return fail(ok.error());
    config.*(*text) = std::string(*value);
  } else if (auto* list = std::get_if<ListField>(&setting.field)) {
    if (auto ok = check_text(setting.text, *value, true); !ok) return fail(ok.error());
    // The first flag replaces what the file gave; the following ones add.
    if (!list_continues) (config.*(*list)).clear();
    (config.*(*list)).push_back(std::string(*value));
  }
  return {};
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for a near miss among `candidates`, else "".
std::string suggestion(std::string_view typed, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t best_distance = 3;
  for (std::string_view candidate : candidates) {
    size_t distance = edit_distance(typed, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", best);
}

std::vector<std::string_view> table_names() {
  std::vector<std::string_view> names;
  for (const Setting& setting : settings)
    if (!setting.table.empty() && std::find(names.begin(), names.end(), setting.table) == names.end())
      names.push_back(setting.table);
  return names;
}

const Setting* file_setting(std::string_view table, std::string_view key) {
  for (const Setting& setting : settings)
    if (setting.table == table && setting.key == key) return &setting;
  return nullptr;
}

const Setting* flag_setting(std::string_view flag) {
  for (const Setting& setting : settings)
    if (!setting.flag.empty() && setting.flag == flag) return &setting;
  return nullptr;
}

// Applies the file; the problem reported is the first in file order (toml++
// iterates keys sorted, so every problem is found and the earliest kept).
std::expected<void, ConfigError> apply_file(Builder& builder, std::string_view text, std::string_view file_name) {
  builder.file_name = std::string(file_name);
  toml::parse_result parsed = toml::parse(text, file_name);
  if (!parsed) {
    const toml::parse_error& error = parsed.error();
    return std::unexpected(ConfigError{fmt::format("{}:{}:{}: {}", file_name, error.source().begin.line,
                                                   error.source().begin.column, error.description()),
                                       1});
  }
  std::optional<std::pair<uint32_t, ConfigError>> first;
  auto note = [&](uint32_t line, ConfigError error) {
    if (!first || line < first->first) first.emplace(line, std::move(error));
  };
  auto at = [&](uint32_t line, std::string_view problem) {
    note(line, ConfigError{fmt::format("{}:{}: {}", file_name, line, problem), 1});
  };
  std::vector<std::string_view> tables = table_names();
  for (auto&& [table_key, table_node] : parsed.table()) {
    std::string_view table = table_key.str();
    uint32_t line = static_cast<uint32_t>(table_key.source().begin.line);
    if (std::find(tables.begin(), tables.end(), table) == tables.end()) {
      if (table_node.is_table()) {
        at(line, fmt::format("unknown table [{}]{}", table, suggestion(table, tables)));
      } else {
        std::string hint;
        for (const Setting& setting : settings)
          if (setting.key == table && !setting.table.empty()) hint = fmt::format(" (it belongs in [{}])", setting.table);
        at(line, fmt::format("unknown key '{}' outside any table{}", table, hint));
      }
      continue;
    }
    const toml::table* entries = table_node.as_table();
    if (!entries) {
      at(line, fmt::format("'{}' must be the table [{}] (got {})", table, table, node_type_name(table_node.type())));
      continue;
    }
    std::vector<std::string_view> keys;
    for (const Setting& setting : settings)
      if (setting.table == table) keys.push_back(setting.key);
    for (auto&& [key, node] : *entries) {
      const Setting* setting = file_setting(table, key.str());
      if (!setting) {
        at(static_cast<uint32_t>(key.source().begin.line),
           fmt::format("unknown key '{}' in [{}]{}", key.str(), table, suggestion(key.str(), keys)));
        continue;
      }
      if (auto ok = set_from_file(builder, *setting, node); !ok) note(builder.origin(*setting).line, ok.error());
    }
  }
  if (first) return std::unexpected(first->second);
  return {};
}

// Two listeners collide when they would bind the same port on the same
// address, or on any address of a family that includes the other's.
bool listeners_overlap(const SocketAddress& a, const SocketAddress& b) {
  auto port_of = [](const SocketAddress& address) -> uint16_t {
    if (address.storage.ss_family == AF_INET) return reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port;
    return reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_port;
  };
  auto is_any = [](const SocketAddress& address) {
    if (address.storage.ss_family == AF_INET)
      return reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr.s_addr == htonl(INADDR_ANY);
    const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr;
    return std::memcmp(&v6, &in6addr_any, sizeof v6) == 0;
  };
  if (port_of(a) == 0 || port_of(a) != port_of(b)) return false;  // port 0: the kernel picks distinct ports
  if (a.storage.ss_family == b.storage.ss_family) {
    if (is_any(a) || is_any(b)) return true;
    return std::memcmp(&a.storage, &b.storage, a.length) == 0;
  }
  // [::] is dual-stack by default: it takes the port on IPv4 too.
  const SocketAddress& v6 = a.storage.ss_family == AF_INET6 ? a : b;
  return is_any(v6);
}

// The setting to blame when two disagree: the one the operator set (the
// flag rather than the file), else `first`.
const Setting& blame(const Builder& builder, const Setting& first, const Setting& second) {
  auto rank = [&](const Setting& setting) { return static_cast<int>(builder.origin(setting).kind); };
  return rank(second) > rank(first) ? second : first;
}

std::expected<void, ConfigError> check_together(const Builder& builder) {
  const EdgeConfig& config = builder.config;
  const Setting& certificate = setting_at(&EdgeConfig::tls_certificate);
  const Setting& key = setting_at(&EdgeConfig::tls_key);
  const Setting& public_listener = setting_at(&EdgeConfig::listen);
  const Setting& plain_listener = setting_at(&EdgeConfig::plain_listen);
  const Setting& admin_listener = setting_at(&EdgeConfig::admin_listen);
  const Setting& proxy = setting_at(&EdgeConfig::proxy_protocol);
  const Setting& message_limit = setting_at(&EdgeConfig::max_message_bytes);
  const Setting& send_queue = setting_at(&EdgeConfig::send_queue_bytes);
  const Setting& drain = setting_at(&EdgeConfig::drain_ms);
  const Setting& deadline = setting_at(&EdgeConfig::drain_deadline_ms);

  if (config.tls_certificate.empty() != config.tls_key.empty()) {
    const Setting& given = config.tls_certificate.empty() ? key : certificate;
    const Setting& missing = config.tls_certificate.empty() ? certificate : key;
    return std::unexpected(
        error_at(builder, given, fmt::format("{} is missing: give both or neither", name(missing))));
  }
  if (config.listen.empty() && config.plain_listen.empty())
    return std::unexpected(error_at(builder, blame(builder, public_listener, plain_listener),
                                    fmt::format("no listener: {} and {} are both empty", name(public_listener),
                                                name(plain_listener))));
  if (!config.tls_certificate.empty() && config.listen.empty())
    return std::unexpected(error_at(builder, blame(builder, certificate, public_listener),
                                    fmt::format("TLS serves {}, which is empty", name(public_listener))));
  if (config.proxy_protocol && config.plain_listen.empty())
    return std::unexpected(error_at(
        builder, blame(builder, proxy, plain_listener),
        fmt::format("{} needs {}: only that listener expects the header", name(proxy), name(plain_listener))));

  const Setting* listeners[] = {&public_listener, &plain_listener, &admin_listener};
  for (size_t i = 0; i < std::size(listeners); ++i) {
    for (size_t j = i + 1; j < std::size(listeners); ++j) {
      const std::string& first_text = config.*std::get<TextField>(listeners[i]->field);
      const std::string& second_text = config.*std::get<TextField>(listeners[j]->field);
      if (first_text.empty() || second_text.empty()) continue;
      auto first = parse_socket_address(first_text);
      auto second = parse_socket_address(second_text);
      if (first && second && listeners_overlap(*first, *second)) {
        const Setting& culprit = blame(builder, *listeners[j], *listeners[i]);
        const Setting& other = &culprit == listeners[j] ? *listeners[i] : *listeners[j];
        return std::unexpected(error_at(builder, culprit,
                                        fmt::format("{} overlaps {} ({})", printable(config.*std::get<TextField>(culprit.field)),
                                                    name(other), printable(config.*std::get<TextField>(other.field)))));
      }
    }
  }

  // A relayed signal carries up to a whole client message plus its envelope:
  // the queue must take one while another is still leaving.
  if (static_cast<uint64_t>(config.send_queue_bytes) < 2ull * config.max_message_bytes) {
    const Setting& culprit = blame(builder, send_queue, message_limit);
    return std::unexpected(error_at(
        builder, culprit,
        &culprit == &send_queue
            ? fmt::format("must be at least twice {} ({})", name(message_limit), 2ull * config.max_message_bytes)
            : fmt::format("twice this ({}) exceeds {} ({})", 2ull * config.max_message_bytes, name(send_queue),
                          config.send_queue_bytes)));
  }
  if (config.drain_deadline_ms <= config.drain_ms) {
    const Setting& culprit = blame(builder, deadline, drain);
    return std::unexpected(error_at(
        builder, culprit,
        &culprit == &deadline
            ? fmt::format("must exceed {} ({}): the last client told to reconnect needs time to go",
                          name(drain), config.drain_ms)
            : fmt::format("must be below {} ({}): the last client told to reconnect needs time to go",
                          name(deadline), config.drain_deadline_ms)));
  }
  return {};
}

// A TOML basic string.
std::string toml_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7F) {
      out += fmt::format("\\u{:04X}", byte);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string toml_value(const EdgeConfig& config, const Setting& setting) {
  if (auto* count = std::get_if<CountField>(&setting.field)) return std::to_string(config.*(*count));
  if (auto* flag = std::get_if<SwitchField>(&setting.field)) return config.*(*flag) ? "true" : "false";
  if (auto* text = std::get_if<TextField>(&setting.field)) return toml_string(config.*(*text));
  const std::vector<std::string>& list = config.*std::get<ListField>(setting.field);
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i) {
    if (i > 0) out += ", ";
    out += toml_string(list[i]);
  }
  return out + "]";
}

// Splits the command line into the config path and the flags to apply, in
// order. Flags take "--flag VALUE" or "--flag=VALUE"; switches take no value
// or "=true"/"=false".
struct FlagUse {
  const Setting* setting;
  std::optional<std::string_view> value;
};
struct CommandLine {
  std::optional<std::string_view> config_path;
  std::vector<FlagUse> flags;
  bool help = false;
};

std::expected<CommandLine, ConfigError> split_arguments(std::span<const std::string_view> arguments) {
  CommandLine line;
  for (std::string_view argument : arguments)
    if (argument == "--help" || argument == "-h") {
      line.help = true;
      return line;
    }
  for (size_t i = 0; i < arguments.size(); ++i) {
    std::string_view argument = arguments[i];
    if (!argument.starts_with("--"))
      return std::unexpected(ConfigError{fmt::format("unexpected argument {} (see --help)", printable(argument))});
    std::string_view flag = argument;
    std::optional<std::string_view> value;
    if (size_t equals = argument.find('='); equals != std::string_view::npos) {
      flag = argument.substr(0, equals);
      value = argument.substr(equals + 1);
    }
    const Setting* setting = flag_setting(flag);
    bool is_config = flag == "--config";
    if (!setting && !is_config)
      return std::unexpected(ConfigError{fmt::format("unknown option {} (see --help)", printable(flag))});
    bool is_switch = setting && std::holds_alternative<SwitchField>(setting->field);
    if (!value && !is_switch) {
      if (i + 1 >= arguments.size()) return std::unexpected(ConfigError{fmt::format("{} needs a value", flag)});
      value = arguments[++i];
    }
    if (is_config) {
      if (line.config_path) return std::unexpected(ConfigError{"--config: given twice"});
      if (value->empty()) return std::unexpected(ConfigError{"--config: needs a file name"});
      line.config_path = value;
    } else {
      line.flags.push_back(FlagUse{setting, value});
    }
  }
  return line;
}

std::expected<std::string, std::string> read_whole_file(const std::string& path) {
  constexpr size_t limit = 1 << 20;  // a configuration, not a data set
  FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return std::unexpected(std::strerror(errno));
  std::string content;
  char buffer[16384];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) {
    content.append(buffer, got);
    if (content.size() > limit) {
      std::fclose(file);
      return std::unexpected("larger than 1 MiB");
    }
  }
  bool failed = std::ferror(file) != 0;
  int saved = errno;
  std::fclose(file);
  if (failed) return std::unexpected(std::strerror(saved));
  return content;
}

}  // namespace

std::string edge_usage() {
  std::string text =
      "usage: mf-edge [--config FILE] [options]\n"
      "Settings come from FILE (TOML; see mf-edge.example.toml for every setting and its default);\n"
      "each option overrides its setting, whatever the order.\n";
  auto line = [&](std::string_view left, std::string_view help) {
    text += fmt::format("  {:<36} {}\n", left, help);
  };
  line("--config FILE", "the configuration file");
  const EdgeConfig defaults;
  for (const Setting& setting : settings) {
    if (setting.flag.empty()) continue;
    std::string left = setting.metavar.empty() ? std::string(setting.flag)
                                               : fmt::format("{} {}", setting.flag, setting.metavar);
    std::string help(setting.help);
    if (auto* count = std::get_if<CountField>(&setting.field))
      help += fmt::format(" (default {})", defaults.*(*count));
    else if (auto* string = std::get_if<TextField>(&setting.field); string && !(defaults.*(*string)).empty())
      help += fmt::format(" (default {})", defaults.*(*string));
    line(left, help);
  }
  line("--help", "this text");
  return text;
}

std::expected<EdgeConfig, ConfigError> parse_edge_arguments(std::span<const std::string_view> arguments,
                                                            const ConfigFileReader& read_file) {
  auto line = split_arguments(arguments);
  if (!line) return std::unexpected(line.error());
  if (line->help) return std::unexpected(ConfigError{edge_usage(), 0});
  Builder builder;
  if (line->config_path) {
    std::string path(*line->config_path);
    auto text = read_file(path);
    if (!text) return std::unexpected(ConfigError{fmt::format("--config: cannot read {}: {}", printable(path), text.error()), 1});
    if (auto ok = apply_file(builder, *text, path); !ok) return std::unexpected(ok.error());
    builder.config.config_file = path;
  }
  for (const FlagUse& use : line->flags)
    if (auto ok = set_from_flag(builder, *use.setting, use.value); !ok) return std::unexpected(ok.error());
  if (auto ok = check_together(builder); !ok) return std::unexpected(ok.error());
  return builder.config;
}

std::expected<EdgeConfig, ConfigError> parse_edge_config_file(std::string_view toml_text, std::string_view file_name) {
  Builder builder;
  if (auto ok = apply_file(builder, toml_text, file_name); !ok) return std::unexpected(ok.error());
  builder.config.config_file = std::string(file_name);
  if (auto ok = check_together(builder); !ok) return std::unexpected(ok.error());
  return builder.config;
}

std::expected<EdgeConfig, ConfigError> parse_edge_arguments(int argc, char** argv) {
  std::vector<std::string_view> arguments(argv + (argc > 0 ? 1 : 0), argv + argc);
  auto config = parse_edge_arguments(arguments, read_whole_file);
  if (!config) {
    if (config.error().exit_code == 0) {
      fmt::print("{}", config.error().message);
      config.error().message.clear();
    }
    return config;
  }
  if (config->edge_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    config->edge_id = fmt::format("{}-{}", host, getpid());
  }
  return config;
}

std::string describe(const EdgeConfig& config) {
  std::string text = "# mf-edge effective configuration";
  if (!config.config_file.empty()) text += fmt::format(" (file {} and flags)", printable(config.config_file));
  text += "\n";
  std::string_view table;
  for (const Setting& setting : settings) {
    if (setting.table.empty()) continue;
    if (setting.table != table) {
      table = setting.table;
      text += fmt::format("\n[{}]\n", table);
    }
    text += fmt::format("{} = {}\n", setting.key, toml_value(config, setting));
  }
  return text;
}

}  // namespace mf::edge
