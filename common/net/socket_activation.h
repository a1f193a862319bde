#pragma once
// Socket activation (sd_listen_fds(3)), spoken directly: systemd (or
// systemd-socket-activate) hands listening sockets over as descriptors 3..,
// named by LISTEN_FDNAMES. A listener passed this way stays open across
// restarts of the service, so clients are never refused while it restarts.
#include <expected>
#include <string>
#include <vector>

namespace mf {

struct InheritedSocket {
  int fd;
  std::string name;  // from LISTEN_FDNAMES; "unknown" when unnamed
};

// Takes the sockets meant for this process (LISTEN_PID) and clears the
// variables so no child inherits them. Each must be a listening stream
// socket; anything else is an error line. Empty when not socket-activated.
std::expected<std::vector<InheritedSocket>, std::string> take_inherited_sockets();

}  // namespace mf
