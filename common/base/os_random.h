#pragma once
// Randomness from the operating system's CSPRNG (getrandom(2)): seeds of the
// per-shard generators, the keys of hashes over client-chosen strings. Never
// a fallback: a caller that gets an error refuses what it was for (start-up
// fails, a `session` is not issued).
#include <cstdint>
#include <expected>
#include <span>
#include <string>

namespace mf {

// Fills `out` completely or returns why not (getrandom's errno, a short read
// is retried).
std::expected<void, std::string> fill_os_random(std::span<uint8_t> out);

// 64 bits from fill_os_random.
std::expected<uint64_t, std::string> os_random_u64();

}  // namespace mf
