#pragma once
// Hash for std::unordered_map<std::string, T, TransparentStringHash,
// std::equal_to<>>: lookups by std::string_view without building a
// std::string (no allocation on the lookup path).
#include <cstddef>
#include <functional>
#include <string_view>

namespace mf {

struct TransparentStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

}  // namespace mf
