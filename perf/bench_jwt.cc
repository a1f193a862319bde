// Verification of admission tokens (once per connection, at the upgrade).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "edge/jwt.h"

namespace {

constexpr std::string_view secret = "bench-secret-bench-secret-bench-32";
constexpr int64_t now = 1'700'000'000;

// Signed with `secret` (Python hmac/base64): exp 4102444800, a sub and
// three streams.
constexpr std::string_view three_streams =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJ2aWV3ZXItOGYzYTJjIiwiZXhwIjo0MTAyNDQ0ODAwLCJzdHJlYW1zIjpbImxpdmUtbWFpbiIsImxpdmUtYmFja3VwIiwiZXZl"
    "bnQ6MjAyNC5maW5hbCJdfQ."
    "w55MJdM536BtsC8Hr6frqhpY3iBLFPRP07IeGR3XgsQ";
// The same without a streams claim.
constexpr std::string_view all_streams =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJ2aWV3ZXItOGYzYTJjIiwiZXhwIjo0MTAyNDQ0ODAwfQ."
    "97A3BTOWM_eduxTki3nd0H1xiwXZXjq6ldLxhsmXLhA";

void verify(benchmark::State& state, std::string_view token, bool expect_ok) {
  auto verifier = mf::edge::JwtVerifier::create(secret);
  if (!verifier) std::abort();
  simdjson::dom::parser parser;
  for (auto _ : state) {
    auto claims = verifier->verify(token, now, parser);
    if (claims.has_value() != expect_ok) std::abort();
    benchmark::DoNotOptimize(claims);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_VerifyThreeStreams(benchmark::State& state) { verify(state, three_streams, true); }
BENCHMARK(BM_VerifyThreeStreams);

void BM_VerifyAllStreams(benchmark::State& state) { verify(state, all_streams, true); }
BENCHMARK(BM_VerifyAllStreams);

void BM_VerifyBadSignature(benchmark::State& state) {
  std::string forged(three_streams);
  forged[forged.size() - 5] = forged[forged.size() - 5] == 'A' ? 'B' : 'A';
  verify(state, forged, false);
}
BENCHMARK(BM_VerifyBadSignature);

void BM_VerifyMalformed(benchmark::State& state) { verify(state, "not-a-token", false); }
BENCHMARK(BM_VerifyMalformed);

void BM_CoversThreeStreams(benchmark::State& state) {
  auto verifier = mf::edge::JwtVerifier::create(secret);
  simdjson::dom::parser parser;
  auto claims = verifier->verify(three_streams, now, parser);
  if (!claims) std::abort();
  for (auto _ : state) {
    bool covered = claims->covers("live-backup");
    benchmark::DoNotOptimize(covered);
  }
}
BENCHMARK(BM_CoversThreeStreams);

}  // namespace
