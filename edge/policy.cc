#include "edge/policy.h"

#include <fmt/core.h>
#include <simdjson.h>

#include <algorithm>
#include <optional>

#include "common/config/config_schema.h"
#include "common/base/json_writer.h"
#include "edge/sdk_message.h"

namespace mf::edge {
namespace {

using CmafMode = Policy::CmafMode;

// The fields one object of the document sets; unset fields leave the layer
// below unchanged.
struct PolicyPatch {
  std::optional<bool> mesh_enabled;
  std::optional<uint32_t> max_peers;
  std::optional<uint32_t> max_viewers;
  std::optional<uint32_t> upload_cap_kbps;
  std::optional<CmafMode> cmaf_mode;
  std::optional<uint32_t> offer_timeout_ms;
};

void apply(const PolicyPatch& patch, Policy& policy) {
  if (patch.mesh_enabled) policy.mesh_enabled = *patch.mesh_enabled;
  if (patch.max_peers) policy.max_peers = *patch.max_peers;
  if (patch.max_viewers) policy.max_viewers = *patch.max_viewers;
  if (patch.upload_cap_kbps) policy.upload_cap_kbps = *patch.upload_cap_kbps;
  if (patch.cmaf_mode) policy.cmaf_mode = *patch.cmaf_mode;
  if (patch.offer_timeout_ms) policy.offer_timeout_ms = *patch.offer_timeout_ms;
}

// Document text quoted for an error line: at most 64 bytes, in double
// quotes as JSON writes strings.
std::string printable(std::string_view text) { return config::printable(text, '"', 64); }

std::string_view type_name(simdjson::dom::element_type type) {
  using simdjson::dom::element_type;
  switch (type) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a non-integer number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "an unknown value";
}

// An integer field in [low, high]; 8.0 and 1e3 are not integers.
std::expected<uint32_t, std::string> read_integer(simdjson::dom::element value, std::string_view where, uint32_t low,
                                                  uint32_t high) {
  auto range_error = [&](std::string got) {
    return std::unexpected(fmt::format("{}: must be an integer {}..{} (got {})", where, low, high, got));
  };
  switch (value.type()) {
    case simdjson::dom::element_type::INT64: {
      int64_t number = 0;
      if (value.get_int64().get(number)) return range_error("an unreadable integer");
      if (number < static_cast<int64_t>(low) || number > static_cast<int64_t>(high))
        return range_error(std::to_string(number));
      return static_cast<uint32_t>(number);
    }
    case simdjson::dom::element_type::UINT64: {
      // Only integers above INT64_MAX are typed UINT64: always out of range.
      uint64_t number = 0;
      if (value.get_uint64().get(number)) return range_error("an unreadable integer");
      return range_error(std::to_string(number));
    }
    default: return range_error(std::string(type_name(value.type())));
  }
}

std::expected<CmafMode, std::string> read_cmaf_mode(simdjson::dom::element value, std::string_view where) {
  std::string_view text;
  if (value.get_string().get(text) == simdjson::SUCCESS) {
    if (text == "off") return CmafMode::off;
    if (text == "advertise-only") return CmafMode::advertise_only;
    if (text == "on") return CmafMode::on;
    return std::unexpected(
        fmt::format("{}: must be \"off\", \"advertise-only\" or \"on\" (got {})", where, printable(text)));
  }
  return std::unexpected(
      fmt::format("{}: must be \"off\", \"advertise-only\" or \"on\" (got {})", where, type_name(value.type())));
}

// One partial policy object; `where` names it in errors ("defaults",
// `streams."live-1"`).
std::expected<PolicyPatch, std::string> read_patch(simdjson::dom::element element, std::string_view where) {
  simdjson::dom::object object;
  if (element.get_object().get(object))
    return std::unexpected(fmt::format("{}: must be an object (got {})", where, type_name(element.type())));
  PolicyPatch patch;
  for (auto field : object) {
    std::string_view key = field.key;
    std::string path = fmt::format("{}.{}", where, key);
    auto duplicate = [&] { return std::unexpected(fmt::format("{}: duplicate field {}", where, printable(key))); };
    auto take_integer = [&](std::optional<uint32_t>& slot, uint32_t low,
                            uint32_t high) -> std::expected<void, std::string> {
      if (slot) return duplicate();
      auto number = read_integer(field.value, path, low, high);
      if (!number) return std::unexpected(number.error());
      slot = *number;
      return {};
    };
    std::expected<void, std::string> ok;
    if (key == "meshEnabled") {
      if (patch.mesh_enabled) return duplicate();
      bool flag = false;
      if (field.value.get_bool().get(flag))
        return std::unexpected(
            fmt::format("{}: must be true or false (got {})", path, type_name(field.value.type())));
      patch.mesh_enabled = flag;
    } else if (key == "maxPeers") {
      ok = take_integer(patch.max_peers, 0, max_policy_peers);
    } else if (key == "maxViewers") {
      ok = take_integer(patch.max_viewers, 0, UINT32_MAX);
    } else if (key == "uploadCapKbps") {
      ok = take_integer(patch.upload_cap_kbps, 0, UINT32_MAX);
    } else if (key == "cmafMode") {
      if (patch.cmaf_mode) return duplicate();
      auto mode = read_cmaf_mode(field.value, path);
      if (!mode) return std::unexpected(mode.error());
      patch.cmaf_mode = *mode;
    } else if (key == "offerTimeoutMs") {
      ok = take_integer(patch.offer_timeout_ms, min_offer_timeout_ms, max_offer_timeout_ms);
    } else {
      return std::unexpected(fmt::format(
          "{}: unknown field {} (expected meshEnabled, maxPeers, maxViewers, uploadCapKbps, cmafMode or "
          "offerTimeoutMs)",
          where, printable(key)));
    }
    if (!ok) return std::unexpected(ok.error());
  }
  return patch;
}

// FNV-1a, 64 bits: a content fingerprint, not a defence against collisions
// someone engineers (the operator writes the document).
void hash_bytes(uint64_t& hash, std::string_view bytes) {
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ull;
  }
}

void hash_policy(uint64_t& hash, const Policy& policy) {
  char buffer[max_policy_json_bytes];
  size_t size = write_policy_json(buffer, policy);
  hash_bytes(hash, std::string_view(buffer, size));
}

}  // namespace

std::string_view cmaf_mode_text(CmafMode mode) {
  switch (mode) {
    case CmafMode::off: return "off";
    case CmafMode::advertise_only: return "advertise-only";
    case CmafMode::on: return "on";
  }
  return "off";
}

size_t write_policy_json(std::span<char> out, const Policy& policy) {
  JsonWriter writer(out);
  writer.raw(policy.mesh_enabled ? "{\"meshEnabled\":true" : "{\"meshEnabled\":false");
  writer.raw(",\"maxPeers\":");
  writer.unsigned_number(policy.max_peers);
  writer.raw(",\"maxViewers\":");
  writer.unsigned_number(policy.max_viewers);
  writer.raw(",\"uploadCapKbps\":");
  writer.unsigned_number(policy.upload_cap_kbps);
  writer.raw(",\"cmafMode\":");
  writer.string(cmaf_mode_text(policy.cmaf_mode));
  writer.raw(",\"offerTimeoutMs\":");
  writer.unsigned_number(policy.offer_timeout_ms);
  writer.raw("}");
  return writer.ok() ? writer.size() : 0;
}

PolicyDocument::PolicyDocument() {
  version_ = 0xcbf29ce484222325ull;
  hash_policy(version_, defaults_);
}

std::expected<PolicyDocument, std::string> PolicyDocument::parse(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string text(json);
  simdjson::dom::element root;
  if (auto error = parser.parse(text).get(root))
    return std::unexpected(fmt::format("not valid JSON: {}", simdjson::error_message(error)));
  simdjson::dom::object top;
  if (root.get_object().get(top))
    return std::unexpected(fmt::format("the document must be a JSON object (got {})", type_name(root.type())));

  PolicyPatch defaults_patch;
  bool seen_defaults = false;
  bool seen_streams = false;
  std::vector<std::pair<std::string_view, PolicyPatch>> stream_patches;
  for (auto member : top) {
    std::string_view key = member.key;
    if (key == "defaults") {
      if (seen_defaults) return std::unexpected("duplicate top-level field \"defaults\"");
      seen_defaults = true;
      auto patch = read_patch(member.value, "defaults");
      if (!patch) return std::unexpected(patch.error());
      defaults_patch = *patch;
    } else if (key == "streams") {
      if (seen_streams) return std::unexpected("duplicate top-level field \"streams\"");
      seen_streams = true;
      simdjson::dom::object streams;
      if (member.value.get_object().get(streams))
        return std::unexpected(
            fmt::format("streams: must be an object keyed by streamId (got {})", type_name(member.value.type())));
      for (auto entry : streams) {
        std::string_view stream_id = entry.key;
        if (!is_valid_identifier(stream_id))
          return std::unexpected(fmt::format(
              "streams: {} is not a valid streamId (1..128 bytes of [A-Za-z0-9._:-])", printable(stream_id)));
        auto patch = read_patch(entry.value, fmt::format("streams.{}", printable(stream_id)));
        if (!patch) return std::unexpected(patch.error());
        stream_patches.emplace_back(stream_id, *patch);
      }
    } else {
      return std::unexpected(
          fmt::format("unknown top-level field {} (expected defaults or streams)", printable(key)));
    }
  }

  PolicyDocument document;
  apply(defaults_patch, document.defaults_);
  document.streams_.reserve(stream_patches.size());
  for (const auto& [stream_id, patch] : stream_patches) {
    Policy policy = document.defaults_;
    apply(patch, policy);
    if (!document.streams_.emplace(std::string(stream_id), policy).second)
      return std::unexpected(fmt::format("streams: duplicate streamId {}", printable(stream_id)));
  }
  document.version_ = 0xcbf29ce484222325ull;
  hash_policy(document.version_, document.defaults_);
  for (const std::string& stream_id : document.stream_ids()) {
    // The id's terminator keeps "a" + policy distinct from "a{..." prefixes.
    hash_bytes(document.version_, stream_id);
    hash_bytes(document.version_, std::string_view("\0", 1));
    hash_policy(document.version_, document.streams_.find(stream_id)->second);
  }
  return document;
}

Policy PolicyDocument::effective(std::string_view stream_id) const {
  auto found = streams_.find(stream_id);
  return found == streams_.end() ? defaults_ : found->second;
}

bool PolicyDocument::names_stream(std::string_view stream_id) const { return streams_.contains(stream_id); }

std::vector<std::string> PolicyDocument::stream_ids() const {
  std::vector<std::string> ids;
  ids.reserve(streams_.size());
  for (const auto& entry : streams_) ids.push_back(entry.first);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> streams_changed(const PolicyDocument& before, const PolicyDocument& after) {
  std::vector<std::string> ids = before.stream_ids();
  std::vector<std::string> more = after.stream_ids();
  ids.insert(ids.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::erase_if(ids, [&](const std::string& id) { return before.effective(id) == after.effective(id); });
  return ids;
}

bool defaults_changed(const PolicyDocument& before, const PolicyDocument& after) {
  return before.defaults() != after.defaults();
}

}  // namespace mf::edge
