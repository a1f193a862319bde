#pragma once
// Table-driven settings for a program's configuration: one table of
// `Setting`s says where each value lives in the TOML file ([table] key, or
// [[table]] entries), which flag sets it, how it is checked and what --help
// says about it. The file reader, the flag reader, describe() and the usage
// text all work from that one table, so they cannot disagree.
//
// The rules every program shares:
// - the file (--config FILE) is read first; flags override it whatever their
//   order; the last of two flags wins; the first flag of a list or of a
//   [[table]] replaces what the file gave, the following ones add;
// - every problem is one line naming the setting: "FILE:LINE: [table] key:
//   problem" for a value from the file, "--flag: problem" for a flag; the
//   exit code is 1 for the file, 2 for the command line, 0 for --help;
// - an unknown table or key is an error (with a near miss suggested), so a
//   typo stops the program at start instead of being ignored;
// - of several problems in the file, the earliest line is reported;
// - describe() writes TOML that reads back to the same record.
//
// toml++ stays inside config_schema.cc: nothing here depends on it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <expected>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mf::config {

// One line (or the usage text for --help). exit_code: 0 for --help, 2 for a
// bad flag, 1 for a bad file or a value from the file.
struct ConfigError {
  std::string message;
  int exit_code = 2;
};

// The whole content of a file, or a one-line reason it could not be read.
using ConfigFileReader = std::function<std::expected<std::string, std::string>(const std::string& path)>;

// Reads a file from disk: at most 1 MiB (a configuration, not a data set).
std::expected<std::string, std::string> read_whole_file(const std::string& path);

// A secret kept in a file of its own (a key, a password, a token): its
// content without the trailing line ends an editor adds; the problem is
// "cannot read PATH: reason".
std::expected<std::string, std::string> read_secret_file(const std::string& path);

// Untrusted text quoted for a one-line message: between `quote`s, with the
// quote and backslash escaped and control bytes as \xNN, so the line stays
// one unambiguous printable line; longer than `max_bytes`, it is cut on a
// UTF-8 boundary and marked with "...". quote '\0': no quotes, only control
// bytes escaped (for a message that quotes and escapes its own parts, such
// as a parser's).
std::string printable(std::string_view text, char quote = '\'', size_t max_bytes = SIZE_MAX);

struct Setting;

// A text value's check: nothing, or the problem without the location.
// `from_flag`: the value came from the command line, where an empty value is
// a slip rather than "unset".
using TextCheck = std::expected<void, std::string> (*)(std::string_view value, const Setting& setting,
                                                       bool from_flag);

// The checks programs share. A program adds its own as plain functions.
// HOST:PORT to listen on, as parse_socket_address reads it; empty: disabled.
std::expected<void, std::string> check_listen_address(std::string_view value, const Setting&, bool from_flag);
// HOST:PORT to connect to: a numeric address (or localhost), not the
// unspecified one, port 1..65535; empty in the file: unset.
std::expected<void, std::string> check_host_port(std::string_view value, const Setting&, bool from_flag);
// A path read later, not here; empty in the file: unset.
std::expected<void, std::string> check_file(std::string_view value, const Setting&, bool from_flag);
// An absolute HTTP request path: printable ASCII, no space, '?' or '#', at
// most 256 bytes.
std::expected<void, std::string> check_request_path(std::string_view value, const Setting&, bool from_flag);
// A log::Level name.
std::expected<void, std::string> check_log_level(std::string_view value, const Setting&, bool from_flag);
// An RFC 6454 origin as browsers send it: scheme://host[:port], lowercase,
// no path (compared byte for byte with the Origin header).
std::expected<void, std::string> check_origin(std::string_view value, const Setting&, bool from_flag);
// A DNS name as a Host header carries it, without port: lowercase letters,
// digits, '-' and '.', 1..253 bytes.
std::expected<void, std::string> check_host_name(std::string_view value, const Setting&, bool from_flag);
// One of Setting::choices.
std::expected<void, std::string> check_choice(std::string_view value, const Setting& setting, bool from_flag);

enum class Kind : uint8_t {
  count,    // uint32_t, range-checked
  boolean,  // bool: true/false in the file; a flag without a value sets it
  text,     // std::string, checked by Setting::check
  list,     // std::vector<std::string>, each element checked by Setting::check
  entries,  // std::vector<Entry>: [[table]] entries whose keys are Setting::entry_settings
};

// A std::vector of entries with the entry type erased.
struct EntryList {
  size_t (*size)(const void* list);
  void* (*at)(void* list, size_t index);
  void* (*append)(void* list);
  void (*clear)(void* list);
  const void* entry_type;
};

// Where a setting's value lives in its record, the record's type erased (it
// is checked at run time against the schema's record type).
struct Field {
  Kind kind = Kind::count;
  const void* record_type = nullptr;
  void* (*locate)(void* record) = nullptr;
  const EntryList* entries = nullptr;  // Kind::entries only
};

// The identity of a type, compared by address.
template <class T>
inline constexpr char type_tag = 0;

namespace detail {

template <class Member>
struct MemberPointer;
template <class Record, class Value>
struct MemberPointer<Value Record::*> {
  using record = Record;
  using value = Value;
};

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};

template <class Entry>
inline constexpr EntryList entry_list = {
    .size = [](const void* list) { return static_cast<const std::vector<Entry>*>(list)->size(); },
    .at = [](void* list, size_t index) -> void* { return &(*static_cast<std::vector<Entry>*>(list))[index]; },
    .append = [](void* list) -> void* { return &static_cast<std::vector<Entry>*>(list)->emplace_back(); },
    .clear = [](void* list) { static_cast<std::vector<Entry>*>(list)->clear(); },
    .entry_type = &type_tag<Entry>,
};

}  // namespace detail

// The Field of a data member: field<&Config::shards>.
template <auto member>
inline constexpr Field field = [] {
  using Record = typename detail::MemberPointer<decltype(member)>::record;
  using Value = typename detail::MemberPointer<decltype(member)>::value;
  Field result{.record_type = &type_tag<Record>,
               .locate = [](void* record) -> void* { return &(static_cast<Record*>(record)->*member); }};
  if constexpr (std::is_same_v<Value, uint32_t>) {
    result.kind = Kind::count;
  } else if constexpr (std::is_same_v<Value, bool>) {
    result.kind = Kind::boolean;
  } else if constexpr (std::is_same_v<Value, std::string>) {
    result.kind = Kind::text;
  } else if constexpr (std::is_same_v<Value, std::vector<std::string>>) {
    result.kind = Kind::list;
  } else {
    static_assert(detail::IsVector<Value>::value, "a setting is uint32_t, bool, std::string or a std::vector");
    result.kind = Kind::entries;
    result.entries = &detail::entry_list<typename Value::value_type>;
  }
  return result;
}();

// One operator-facing setting.
struct Setting {
  // [table] key in the file. A key of an entry has no table; a [[table]]
  // names its entries with table and key ("tls" + "certificate" is
  // [[tls.certificate]], "" + "backend" is [[backend]]). No key: a flag that
  // is not a setting (such as --check-config).
  std::string_view table = {};
  std::string_view key = {};
  std::string_view flag = {};  // empty: the file only
  std::string_view metavar = {};
  std::string_view help = {};
  Field field;
  TextCheck check = nullptr;  // text and list: nullptr accepts any text
  // Counts: the accepted range, inclusive; entries: how many there may be
  // (after the flags).
  uint32_t low = 0;
  uint32_t high = UINT32_MAX;
  bool zero_allowed = false;                       // counts: 0 (automatic or unlimited) besides low..high
  std::span<const std::string_view> choices = {};  // check_choice: the accepted words
  std::span<const Setting> entry_settings = {};    // entries: the keys of each entry
  bool required = false;                           // a key of an entry: present and not empty
  // Entries: every flag of an entry fills one single entry (a pair such as
  // --tls-cert/--tls-key); otherwise each use of the flag adds an entry.
  bool one_entry_from_flags = false;
};

// A program's settings.
struct Schema {
  std::string_view program;  // "mf-edge": the usage line, describe()'s title, the example file's name
  std::span<const Setting> settings;
  Field config_file;  // where the --config path is kept (text)
  const void* record_type = nullptr;
};

// Where a value came from, so that an error can point at it.
struct Origin {
  enum class Kind : uint8_t { built_in, file, flag } kind = Kind::built_in;
  uint32_t line = 0;
};

// Reads the file and the flags into one record, remembering where each value
// came from; afterwards, the record's own cross-field checks use it to word
// their errors. Values are named by their address in the record (or in one
// of its entries): reader.error_at(&config.tls_key, "...").
class SettingsReader {
 public:
  template <class Record>
  SettingsReader(const Schema& schema, Record& record) : SettingsReader(schema, &record, &type_tag<Record>) {}

  // --help (anywhere) gives ConfigError{usage, 0}; then the --config file
  // read through `read_file`, then the flags in order, then the shared final
  // checks ([[table]] counts, required keys).
  std::expected<void, ConfigError> read_arguments(std::span<const std::string_view> arguments,
                                                  const ConfigFileReader& read_file);
  // A TOML text as the --config file would be (`file_name` appears in
  // errors), with no flags, then the shared final checks.
  std::expected<void, ConfigError> read_file(std::string_view toml_text, std::string_view file_name);

  // "[tls] key (--tls-key)", "[[backend]] address (--backend)".
  std::string name(const void* value) const;
  Origin origin(const void* value) const;
  // The problem located where the value came from: "FILE:LINE: [tls] key:
  // problem", "--tls-key: problem", or "[tls] key: problem" for a default;
  // exit code 2 for a flag, else 1.
  ConfigError error_at(const void* value, std::string_view problem) const;
  // Of two values that disagree, the one the operator set (the flag rather
  // than the file, the file rather than the default); `first` on a tie.
  const void* blame(const void* first, const void* second) const;
  // No two listener addresses (text settings, empty: disabled) bind the
  // same port on overlapping addresses.
  std::expected<void, ConfigError> check_listeners_apart(std::initializer_list<const std::string*> listeners) const;

 private:
  struct Place;
  struct EntryOrigins {
    Origin entry;
    std::vector<Origin> keys;
  };
  SettingsReader(const Schema& schema, void* record, const void* record_type);
  Place place_of(const void* value) const;
  friend struct Reading;

  const Schema& schema_;
  void* record_;
  std::string file_name_;
  std::vector<Origin> origins_;                           // per setting
  std::vector<std::vector<EntryOrigins>> entry_origins_;  // per setting (entries only), per entry
  std::vector<bool> entries_from_flags_;                  // per setting (entries only)
};

// The --help text, defaults taken from `defaults`.
std::string usage(const Schema& schema, const void* defaults);

// The record as TOML, every setting included; reading it back with
// SettingsReader::read_file gives the same record.
std::string describe(const Schema& schema, const void* record);

// Process entry point: `parse` on the command line (without the program
// name) with files read from disk; --help prints the usage and gives an
// empty message with exit code 0.
template <class Config>
std::expected<Config, ConfigError> parse_process_arguments(
    int argc, char** argv,
    std::expected<Config, ConfigError> (*parse)(std::span<const std::string_view>, const ConfigFileReader&)) {
  std::vector<std::string_view> arguments(argv + (argc > 0 ? 1 : 0), argv + argc);
  auto config = parse(arguments, read_whole_file);
  if (!config && config.error().exit_code == 0) {
    std::fputs(config.error().message.c_str(), stdout);
    config.error().message.clear();
  }
  return config;
}

}  // namespace mf::config
