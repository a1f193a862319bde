#pragma once
// Verification of the admission token (docs/protocol.md section 8): an HS256 JWT
// (RFC 7519, compact JWS of RFC 7515) given as `?token=` at the upgrade.
// Pure: bytes and the current time in, claims or a reason out; no IO, no
// clock. The verifier is built once on the control plane and then shared,
// read-only, by every shard.
#include <simdjson.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// OpenSSL's EVP_MAC_CTX, kept opaque so that users of this header need not
// include OpenSSL.
struct evp_mac_ctx_st;

namespace mf::edge {

// Why a token was refused. Every value maps to HTTP 401 at the upgrade; the
// distinction is for logs and counters.
enum class JwtError : uint8_t {
  malformed,       // not three base64url segments, header not a JSON object,
                   // bad "typ", "crit" present, payload not a JSON object
  bad_algorithm,   // header "alg" is not exactly "HS256" ("none" included)
  bad_signature,   // HMAC does not match (or is not 32 bytes)
  expired,         // now >= exp + leeway
  not_yet_valid,   // now < nbf - leeway
  bad_claims,      // exp missing, or exp/nbf/streams of the wrong type or range
  too_large,       // token longer than max_jwt_bytes, or too many streams
};
std::string_view jwt_error_text(JwtError error);

// Longest token accepted (it arrives in the request line, itself limited to
// the 8 KiB head).
inline constexpr size_t max_jwt_bytes = 4096;
// Most entries accepted in the `streams` claim.
inline constexpr size_t max_jwt_streams = 256;
// Clock skew tolerated on exp and nbf unless the operator says otherwise.
inline constexpr int64_t default_jwt_leeway_seconds = 30;
// Largest leeway create() accepts.
inline constexpr int64_t max_jwt_leeway_seconds = 86400;
// Secrets shorter than this get a warning (RFC 7518 section 3.2: an HS256
// key should be at least as long as the hash output).
inline constexpr size_t min_strong_jwt_secret_bytes = 32;

// What an accepted token allows.
struct JwtClaims {
  // True when the token has no `streams` claim or the claim contains "*".
  bool all_streams = false;
  // The streamIds of the claim, sorted and without duplicates (empty when
  // all_streams). An empty `streams` array admits the connection but covers
  // no stream, so every join is refused.
  std::vector<std::string> streams;
  // NumericDate seconds, rounded up when the token gave a fraction (for an
  // integer `now`, now < x exactly when now < ceil(x)).
  int64_t exp = 0;
  std::optional<int64_t> nbf;

  // Whether a join of `stream_id` is inside the token's `streams` claim.
  bool covers(std::string_view stream_id) const;
};

class JwtVerifier {
 public:
  // `secret` is the raw key (bytes, not base64). Fails on an empty secret
  // or a leeway outside [0, max_jwt_leeway_seconds], or when OpenSSL cannot
  // provide HMAC-SHA256.
  static std::expected<JwtVerifier, std::string> create(
      std::string_view secret, int64_t leeway_seconds = default_jwt_leeway_seconds);

  // Non-empty when the secret is shorter than min_strong_jwt_secret_bytes:
  // a line for the start-up log. The verifier still works.
  std::string_view weak_secret_warning() const { return weak_secret_warning_; }
  int64_t leeway_seconds() const { return leeway_seconds_; }

  // Checks `token` at time `now_seconds` (Unix seconds), in this order:
  // size; three base64url segments (alphabet [A-Za-z0-9_-], no '=' padding,
  // canonical trailing bits); header is a JSON object with "alg":"HS256",
  // "typ" absent or "JWT" (ASCII case-insensitive, RFC 7515 section 4.1.9),
  // no "crit" (we understand no extension), no duplicate alg/typ; the
  // signature is HMAC-SHA256(secret, header "." payload), compared in
  // constant time; only then the payload: a JSON object whose `exp` is
  // required, `nbf` optional (both NumericDates within +-2^53 s), `streams`
  // optional (array of streamIds or "*"). Other claims (iss, aud, sub, iat,
  // ...) are ignored. Duplicate exp/nbf/streams are bad_claims.
  //
  // `parser` is scratch space owned by the calling shard (one per thread):
  // the verifier itself is shared read-only, so verify() is const and safe
  // to call from any number of threads at once. Allocates only for the
  // claims and inside OpenSSL: admission is once per connection.
  std::expected<JwtClaims, JwtError> verify(std::string_view token, int64_t now_seconds,
                                            simdjson::dom::parser& parser) const;

 private:
  struct MacContextFree {
    void operator()(evp_mac_ctx_st* context) const;
  };

  JwtVerifier() = default;

  // HMAC-SHA256 keyed with the secret, initialised once in create(): each
  // verification duplicates it instead of fetching the algorithm again
  // (OpenSSL 3 fetches by name, which costs more than the MAC itself).
  std::unique_ptr<evp_mac_ctx_st, MacContextFree> keyed_mac_;
  int64_t leeway_seconds_ = default_jwt_leeway_seconds;
  std::string weak_secret_warning_;
};

}  // namespace mf::edge
