#include "common/net/descriptor_limit.h"

#include <sys/resource.h>

namespace mf {

uint32_t raise_descriptor_limit() {
  constexpr rlim_t table_maximum = rlim_t{1} << 20;
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  return static_cast<uint32_t>(limit.rlim_cur > table_maximum ? table_maximum : limit.rlim_cur);
}

}  // namespace mf
