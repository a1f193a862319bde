#include "edge/json_string_scan.h"

namespace mf::edge::json_scan {

#if defined(__AVX2__)
namespace {
constexpr SplatBytes splat(char c) {
  SplatBytes s{};
  for (char& b : s.bytes) b = c;
  return s;
}
}  // namespace

const SplatBytes quote_splat = splat('"');
const SplatBytes backslash_splat = splat('\\');
const SplatBytes space_splat = splat(0x20);
const SplatBytes identifier_splats[9] = {splat('-' - 1), splat('.' + 1), splat('0' - 1), splat(':' + 1), splat('A' - 1),
                                         splat('Z' + 1), splat('a' - 1), splat('z' + 1), splat('_')};
#endif

}  // namespace mf::edge::json_scan
