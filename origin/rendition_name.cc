#include "origin/rendition_name.h"

#include <fmt/core.h>

#include <algorithm>

#include "common/config/config_schema.h"

namespace mf::origin {

bool is_protocol_identifier(std::string_view text) {
  auto allowed = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '-';
  };
  return !text.empty() && text.size() <= 128 && std::all_of(text.begin(), text.end(), allowed);
}

std::expected<std::string, std::string> rendition_for_playlist(std::string_view playlist_path) {
  constexpr std::string_view suffix = ".m3u8";
  while (playlist_path.size() > 1 && playlist_path.back() == '/') playlist_path.remove_suffix(1);
  size_t slash = playlist_path.rfind('/');
  std::string_view file = slash == std::string_view::npos ? playlist_path : playlist_path.substr(slash + 1);
  if (file.size() <= suffix.size() || file.substr(file.size() - suffix.size()) != suffix)
    return std::unexpected(fmt::format("{} is not NAME.m3u8", config::printable(file)));
  std::string_view directory;
  if (slash != std::string_view::npos) {
    std::string_view parent = playlist_path.substr(0, slash);
    size_t before = parent.rfind('/');
    directory = before == std::string_view::npos ? parent : parent.substr(before + 1);
  }
  if (directory.empty() || directory == "." || directory == "..")
    return std::unexpected(fmt::format("{} has no directory name to make its rendition from", config::printable(playlist_path)));
  std::string rendition = fmt::format("{}:{}", directory, file.substr(0, file.size() - suffix.size()));
  if (!is_protocol_identifier(rendition))
    return std::unexpected(fmt::format("rendition {} is not 1..128 bytes of [A-Za-z0-9._:-]", config::printable(rendition)));
  return rendition;
}

}  // namespace mf::origin
