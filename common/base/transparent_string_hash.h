#pragma once
// Hash for std::unordered_map<std::string, T, TransparentStringHash,
// std::equal_to<>>: lookups by std::string_view without building a
// std::string (no allocation on the lookup path). Keyed with the process's
// secret (common/base/keyed_hash.h): the keys of these tables are often chosen by
// clients, who must not be able to aim collisions at one bucket.
#include <cstddef>
#include <string_view>

#include "common/base/keyed_hash.h"

namespace mf {

struct TransparentStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const noexcept { return static_cast<size_t>(keyed_hash(text)); }
};

}  // namespace mf
