#pragma once
// The ingress's operator page, served at GET / on its admin listener: plain
// HTML and JavaScript compiled into the binary (nothing fetched from
// elsewhere). It reads GET /api/backends and /metrics once a second and
// shows the backends with their state (up, down, draining, slow start), the
// tunnels, TLS handshakes and their failures by reason, and refusals; its
// drain and enable buttons POST to the admin API with the token the operator
// pastes (kept in the page's memory only; docs/security.md, "The admin
// surface").
#include <string_view>

namespace mf::ingress {

std::string_view ingress_page_html();

}  // namespace mf::ingress
