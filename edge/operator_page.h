#pragma once
// The operator's live page, served at GET / on the admin listener: plain
// HTML and JavaScript compiled into the binary (no build step, nothing
// fetched from elsewhere). It reads GET /api/streams once a second and shows,
// per stream and rendition, peers, joins/s, signals/s, proposals that led to
// a connection (as clients report them) and the offload ratio.
#include <string_view>

namespace mf::edge {

std::string_view operator_page_html();

}  // namespace mf::edge
