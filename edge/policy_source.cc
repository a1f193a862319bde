#include "edge/policy_source.h"

namespace mf::edge {

PolicySource::ValkeyResult PolicySource::valkey_read(std::optional<std::string_view> text) {
  if (!text) {
    if (!from_valkey_ && valkey_text_.empty()) return {};
    from_valkey_.reset();
    valkey_text_.clear();
    return {ValkeyChange::removed, {}};
  }
  if (*text == valkey_text_) return {};
  // Remembered before parsing: a value that does not parse is reported once,
  // not at every poll.
  valkey_text_.assign(*text);
  auto document = PolicyDocument::parse(valkey_text_);
  if (!document) return {ValkeyChange::invalid, document.error()};
  from_valkey_ = std::make_shared<const PolicyDocument>(std::move(*document));
  return {ValkeyChange::loaded, {}};
}

}  // namespace mf::edge
