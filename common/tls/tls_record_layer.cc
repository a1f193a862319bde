#include "common/tls/tls_record_layer.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <cstring>
#include <new>
#include <vector>

#include "common/tls/aes_gcm.h"
#include "common/tls/tls_ciphertext_sink.h"

namespace mf::tls {
namespace {

// RFC 8446 section 5.1 content types and section 6 alert descriptions used here.
constexpr uint8_t kChangeCipherSpec = 20;
constexpr uint8_t kAlert = 21;
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kApplicationData = 23;

constexpr uint8_t kAlertCloseNotify = 0;
constexpr uint8_t kAlertUnexpectedMessage = 10;
constexpr uint8_t kAlertBadRecordMac = 20;
constexpr uint8_t kAlertRecordOverflow = 22;
constexpr uint8_t kAlertIllegalParameter = 47;
constexpr uint8_t kAlertDecodeError = 50;
constexpr uint8_t kAlertInternalError = 80;

constexpr uint8_t kHandshakeKeyUpdate = 24;

constexpr size_t kTagBytes = 16;

// A peer's free records: OpenSSL refuses a 33rd empty record in a row
// (MAX_EMPTY_RECORDS); BoringSSL refuses a 33rd KeyUpdate without
// application data in between (kMaxKeyUpdates).
constexpr uint8_t kMaxEmptyRecords = 32;
constexpr uint8_t kMaxKeyUpdates = 32;
constexpr size_t kIvBytes = 12;

std::atomic<uint64_t> next_key_id{1};

const EVP_CIPHER* cipher_of(uint16_t suite) {
  // Fetched once per process: an implicit fetch per record would cost a
  // lock and a lookup in OpenSSL 3.0.
  static EVP_CIPHER* const aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* const aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  static EVP_CIPHER* const chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  switch (suite) {
    case kTlsAes128GcmSha256: return aes128;
    case kTlsAes256GcmSha384: return aes256;
    case kTlsChaCha20Poly1305Sha256: return chacha;
    default: return nullptr;
  }
}

// One AEAD context of the thread's cache, keyed for one direction of one
// connection (the key's process-unique id).
struct KeyedContext {
  EVP_CIPHER_CTX* context = nullptr;
  uint64_t keyed_id = 0;
  uint16_t suite = 0;  // the cipher the context was made for
  bool for_encryption = false;
  // The AES-GCM suites' key, expanded for aes_gcm_seal/open (aes_gcm.h),
  // made when the slot first holds one.
  std::unique_ptr<AesGcmKey> aes;
  uint64_t aes_keyed_id = 0;
};

// Off only in tests that hold the EVP path to the same results.
std::atomic<bool> aes_gcm_engine_enabled{true};

struct CipherWorkspace;
// The calling thread's workspace while it exists (nullptr before its first
// use and after the thread's destructors ran): a RecordLayer destroyed late
// must not make one again just to forget its keys.
thread_local CipherWorkspace* live_workspace = nullptr;

// Per thread: the AEAD contexts, keyed and ready for the keys used last
// (docs/architecture.md, "The relay path"), and the record-sized buffers, so
// sealing and opening allocate nothing. Keying a context (AES key schedule,
// GHASH table, OpenSSL 3's parameter handling) costs more than sealing a
// 200-byte record; a relay opens a record of one connection and seals one to
// another, so with one context every record paid it. The cache is
// direct-mapped by key id (ids are handed out in order, so the newest
// `slots` keys never collide) and grows contexts only as slots are used.
struct CipherWorkspace {
  CipherWorkspace() {
    keyed.resize(kDefaultCipherContextsPerThread);
    live_workspace = this;
  }
  CipherWorkspace(const CipherWorkspace&) = delete;
  CipherWorkspace& operator=(const CipherWorkspace&) = delete;
  // Frees the slot's contexts, the key material overwritten first.
  static void release(KeyedContext& k) {
    EVP_CIPHER_CTX_free(k.context);
    k.context = nullptr;
    if (k.aes != nullptr) aes_gcm_clear(*k.aes);
    k.aes.reset();
    k.keyed_id = k.aes_keyed_id = 0;
  }
  ~CipherWorkspace() {
    live_workspace = nullptr;
    for (KeyedContext& k : keyed) release(k);
    EVP_MAC_CTX_free(hmac_sha256);
    EVP_MAC_CTX_free(hmac_sha384);
  }

  std::vector<KeyedContext> keyed;  // a power of two
  // HMAC contexts for HKDF-Expand-Label, one per digest, made once per
  // thread with their digest set: a new secret only re-keys them, so a
  // KeyUpdate fetches and allocates nothing (the one-shot HMAC() fetches
  // the MAC and the digest and allocates a context on every call).
  EVP_MAC_CTX* hmac_sha256 = nullptr;
  EVP_MAC_CTX* hmac_sha384 = nullptr;
  uint8_t sealed[kRecordHeaderBytes + kMaxRecordBody];
  uint8_t opened[kMaxRecordBody];
  uint8_t assembled[kRecordHeaderBytes + kMaxRecordBody];  // a partial record, made contiguous to open it
};

CipherWorkspace& workspace() {
  static thread_local CipherWorkspace instance;
  return instance;
}

// The AEAD key's length for `suite` (RFC 8446 appendix B.4: AES-128 16
// bytes; AES-256 and ChaCha20 32).
constexpr size_t key_bytes_of(uint16_t suite) { return suite == kTlsAes128GcmSha256 ? 16 : 32; }

// The nonce of the next record under `keys` (RFC 8446 section 5.3: the IV
// xor the 64-bit sequence number).
void record_nonce(const TrafficKeys& keys, uint8_t nonce[kIvBytes]) {
  std::memcpy(nonce, keys.iv, kIvBytes);
  // The sequence number is big-endian, left-padded to the IV's length:
  // its 8 bytes meet the IV's last 8, one word.
  uint64_t low;
  std::memcpy(&low, nonce + kIvBytes - sizeof low, sizeof low);
  low ^= std::endian::native == std::endian::little ? __builtin_bswap64(keys.sequence) : keys.sequence;
  std::memcpy(nonce + kIvBytes - sizeof low, &low, sizeof low);
}

// Records up to this many bytes of body go through aes_gcm.h; larger ones
// through EVP, whose stitched AES-GCM assembly is faster in bulk while its
// set-up per record costs more than a small record's encryption
// (bench_tls_session, BM_RecordLayerSealOpen: docs/benchmarks.md).
constexpr size_t kAesGcmEngineMaxBytes = 2048;

// The thread's expanded key for `keys` when the record's cipher is AES-GCM
// on this CPU (aes_gcm_supported()) and its `size` bytes of body are few
// enough; nullptr sends the record to EVP.
const AesGcmKey* aes_gcm_key_for(uint16_t suite, const TrafficKeys& keys, size_t size) {
  if ((suite != kTlsAes128GcmSha256 && suite != kTlsAes256GcmSha384) || size > kAesGcmEngineMaxBytes ||
      !aes_gcm_engine_enabled.load(std::memory_order_relaxed) || !aes_gcm_supported()) {
    return nullptr;
  }
  CipherWorkspace& w = workspace();
  KeyedContext& k = w.keyed[keys.key_id & (w.keyed.size() - 1)];
  if (k.aes_keyed_id == keys.key_id) return k.aes.get();
  // Made once per slot, then re-keyed in place.
  if (k.aes == nullptr) k.aes.reset(new (std::nothrow) AesGcmKey);
  k.aes_keyed_id = 0;
  if (k.aes == nullptr || !aes_gcm_set_key(*k.aes, {keys.key, key_bytes_of(suite)})) {
    return nullptr;
  }
  k.aes_keyed_id = keys.key_id;
  return k.aes.get();
}

// The thread's context for one record under `keys`, its nonce set; nullptr
// on failure.
EVP_CIPHER_CTX* begin_record(uint16_t suite, const TrafficKeys& keys, bool encrypt) {
  CipherWorkspace& w = workspace();
  KeyedContext& k = w.keyed[keys.key_id & (w.keyed.size() - 1)];
  if (k.context == nullptr && (k.context = EVP_CIPHER_CTX_new()) == nullptr) return nullptr;
  uint8_t nonce[kIvBytes];
  record_nonce(keys, nonce);
  const int enc = encrypt ? 1 : 0;
  if (k.keyed_id == keys.key_id && k.for_encryption == encrypt) {
    return EVP_CipherInit_ex(k.context, nullptr, nullptr, nullptr, nonce, enc) == 1 ? k.context : nullptr;
  }
  k.keyed_id = 0;
  // Naming the cipher rebuilds the provider's context (an allocation and a
  // free in OpenSSL 3.0); a new key for the same cipher only re-keys it.
  const EVP_CIPHER* cipher = k.suite == suite ? nullptr : cipher_of(suite);
  k.suite = 0;
  if (EVP_CipherInit_ex(k.context, cipher, nullptr, keys.key, nonce, enc) != 1) return nullptr;
  k.suite = suite;
  k.keyed_id = keys.key_id;
  k.for_encryption = encrypt;
  return k.context;
}

enum class BodyOpened : uint8_t { opened, bad_tag, cipher_failure };

// Decrypts a record's `sealed` bytes (its body less the tag) into `out` when
// `tag` authenticates them and `header` (the additional data).
BodyOpened open_body(uint16_t suite, const TrafficKeys& keys, std::span<const uint8_t> header,
                     std::span<const uint8_t> sealed, const uint8_t* tag, uint8_t* out) {
  if (const AesGcmKey* aes = aes_gcm_key_for(suite, keys, sealed.size())) {
    uint8_t nonce[kIvBytes];
    record_nonce(keys, nonce);
    return aes_gcm_open(*aes, nonce, header, sealed.data(), out, sealed.size(), tag) ? BodyOpened::opened
                                                                                      : BodyOpened::bad_tag;
  }
  EVP_CIPHER_CTX* const context = begin_record(suite, keys, false);
  if (context == nullptr) return BodyOpened::cipher_failure;
  int produced = 0;
  int tail = 0;
  uint8_t expected_tag[kTagBytes];
  std::memcpy(expected_tag, tag, kTagBytes);
  if (EVP_CipherUpdate(context, nullptr, &produced, header.data(), static_cast<int>(header.size())) != 1 ||
      EVP_CipherUpdate(context, out, &produced, sealed.data(), static_cast<int>(sealed.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, kTagBytes, expected_tag) != 1) {
    return BodyOpened::cipher_failure;
  }
  if (EVP_CipherFinal_ex(context, out + produced, &tail) != 1) return BodyOpened::bad_tag;
  return static_cast<size_t>(produced + tail) == sealed.size() ? BodyOpened::opened : BodyOpened::cipher_failure;
}

// Calls take(std::span<const uint8_t>) on each run of the concatenated
// `pieces` from `first_offset`, `length` bytes in all, in order; false when
// take() returns false or the pieces hold fewer bytes.
template <class Take>
bool for_each_run(std::span<const std::span<const uint8_t>> pieces, size_t first_offset, size_t length, Take&& take) {
  size_t skip = first_offset;
  size_t left = length;
  for (std::span<const uint8_t> piece : pieces) {
    if (left == 0) break;
    if (skip >= piece.size()) {
      skip -= piece.size();
      continue;
    }
    const size_t n = std::min(piece.size() - skip, left);
    if (!take(piece.subspan(skip, n))) return false;
    skip = 0;
    left -= n;
  }
  return left == 0;
}

// Seals a record's body after its `record` header (kRecordHeaderBytes,
// written): `length` bytes of the concatenated `pieces` from
// `first_offset`, the inner content type, `zero_padding` zeros, the tag.
bool seal_body(uint16_t suite, const TrafficKeys& keys, uint8_t content_type,
               std::span<const std::span<const uint8_t>> pieces, size_t first_offset, size_t length,
               size_t zero_padding, uint8_t* record) {
  uint8_t* const inner = record + kRecordHeaderBytes;
  size_t at = 0;
  if (const AesGcmKey* aes = aes_gcm_key_for(suite, keys, length + 1 + zero_padding)) {
    // The plaintext is gathered in place, then sealed there in one call.
    const bool gathered = for_each_run(pieces, first_offset, length, [&](std::span<const uint8_t> run) {
      std::memcpy(inner + at, run.data(), run.size());
      at += run.size();
      return true;
    });
    if (!gathered) return false;
    inner[at++] = content_type;
    std::memset(inner + at, 0, zero_padding);
    at += zero_padding;
    uint8_t nonce[kIvBytes];
    record_nonce(keys, nonce);
    aes_gcm_seal(*aes, nonce, {record, kRecordHeaderBytes}, inner, inner, at, inner + at);
    return true;
  }
  EVP_CIPHER_CTX* const context = begin_record(suite, keys, true);
  if (context == nullptr) return false;
  int produced = 0;
  // Each run, the content type and the padding go through EVP as they are:
  // a record up to 16 KiB is not copied first.
  const auto update = [&](std::span<const uint8_t> run) {
    if (EVP_CipherUpdate(context, inner + at, &produced, run.data(), static_cast<int>(run.size())) != 1) return false;
    at += static_cast<size_t>(produced);
    return true;
  };
  bool ok = EVP_CipherUpdate(context, nullptr, &produced, record, kRecordHeaderBytes) == 1 &&
            for_each_run(pieces, first_offset, length, update) && update({&content_type, 1});
  static constexpr uint8_t kZeros[256] = {};
  for (size_t left_padding = zero_padding; ok && left_padding > 0;) {
    const size_t n = std::min(left_padding, sizeof kZeros);
    ok = update({kZeros, n});
    left_padding -= n;
  }
  ok = ok && EVP_CipherFinal_ex(context, inner + at, &produced) == 1;
  at += static_cast<size_t>(produced);
  ok = ok && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, kTagBytes, inner + at) == 1;
  return ok && at == length + 1 + zero_padding;
}

// A key is retired (its connection closed, or a KeyUpdate replaced it): the
// thread's context keyed for it is cleared, so no key schedule outlives its
// keys (the provider's context is freed, which cleanses it).
void forget_key(uint64_t key_id) {
  CipherWorkspace* w = live_workspace;
  if (key_id == 0 || w == nullptr) return;
  KeyedContext& k = w->keyed[key_id & (w->keyed.size() - 1)];
  if (k.aes_keyed_id == key_id) {
    aes_gcm_clear(*k.aes);
    k.aes_keyed_id = 0;
  }
  if (k.keyed_id != key_id) return;
  EVP_CIPHER_CTX_reset(k.context);
  k.keyed_id = 0;
  k.suite = 0;
}

EVP_MAC* hmac() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

// The thread's HMAC context for `suite`'s hash, made on first use.
EVP_MAC_CTX* hmac_context(uint16_t suite) {
  CipherWorkspace& w = workspace();
  const bool sha384 = suite == kTlsAes256GcmSha384;
  EVP_MAC_CTX*& context = sha384 ? w.hmac_sha384 : w.hmac_sha256;
  if (context != nullptr) return context;
  if (hmac() == nullptr) return nullptr;
  EVP_MAC_CTX* made = EVP_MAC_CTX_new(hmac());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(sha384 ? "SHA384" : "SHA256"), 0),
      OSSL_PARAM_construct_end(),
  };
  if (made == nullptr || EVP_MAC_CTX_set_params(made, params) != 1) {
    EVP_MAC_CTX_free(made);
    return nullptr;
  }
  context = made;
  return context;
}

// HKDF-Expand-Label(secret, label, "", length) of RFC 8446 section 7.1, for
// length <= hash length: one HMAC block, T(1) = HMAC(secret, HkdfLabel | 0x01).
// `rekey` false reuses the key of this thread's previous call for `suite`
// (the HMAC pads stay computed: a traffic key and its IV come from one
// secret, and keying the HMAC is half the cost of a label).
bool expand_label(uint16_t suite, std::span<const uint8_t> secret, std::string_view label, uint8_t* out,
                  size_t length, bool rekey = true) {
  uint8_t info[2 + 1 + 6 + 32 + 1 + 1];
  constexpr std::string_view kPrefix = "tls13 ";
  assert(label.size() <= 32);
  size_t n = 0;
  info[n++] = static_cast<uint8_t>(length >> 8);
  info[n++] = static_cast<uint8_t>(length);
  info[n++] = static_cast<uint8_t>(kPrefix.size() + label.size());
  std::memcpy(info + n, kPrefix.data(), kPrefix.size());
  n += kPrefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = 0;  // empty context
  info[n++] = 1;  // block counter
  EVP_MAC_CTX* context = hmac_context(suite);
  uint8_t block[EVP_MAX_MD_SIZE];
  size_t block_bytes = 0;
  const bool ok = context != nullptr &&
                  EVP_MAC_init(context, rekey ? secret.data() : nullptr, rekey ? secret.size() : 0, nullptr) == 1 &&
                  EVP_MAC_update(context, info, n) == 1 &&
                  EVP_MAC_final(context, block, &block_bytes, sizeof block) == 1 && block_bytes >= length;
  if (ok) std::memcpy(out, block, length);
  OPENSSL_cleanse(block, sizeof block);
  return ok;
}

}  // namespace

void set_cipher_contexts_per_thread(size_t slots) {
  assert(slots > 0 && (slots & (slots - 1)) == 0);
  CipherWorkspace& w = workspace();
  for (KeyedContext& k : w.keyed) CipherWorkspace::release(k);
  w.keyed.clear();
  w.keyed.resize(slots);
}

void set_aes_gcm_engine_enabled(bool enabled) { aes_gcm_engine_enabled.store(enabled, std::memory_order_relaxed); }

RecordLayer::~RecordLayer() {
  forget_key(read_.key_id);
  forget_key(write_.key_id);
  release_partial();
  OPENSSL_cleanse(&read_, sizeof read_);
  OPENSSL_cleanse(&write_, sizeof write_);
}

bool RecordLayer::supports(uint16_t cipher_suite) { return cipher_of(cipher_suite) != nullptr; }

std::expected<void, RecordFailure> RecordLayer::install(uint16_t cipher_suite, std::span<const uint8_t> read_secret,
                                                        std::span<const uint8_t> write_secret,
                                                        uint64_t write_sequence, BlockPool& pool) {
  if (!supports(cipher_suite)) return std::unexpected(RecordFailure{"unsupported cipher suite"});
  pool_ = &pool;
  suite_ = cipher_suite;
  hash_bytes_ = cipher_suite == kTlsAes256GcmSha384 ? 48 : 32;
  key_bytes_ = static_cast<uint8_t>(key_bytes_of(cipher_suite));
  if (read_secret.size() != hash_bytes_ || write_secret.size() != hash_bytes_ || !derive(read_, read_secret) ||
      !derive(write_, write_secret)) {
    suite_ = 0;
    ERR_clear_error();
    return std::unexpected(RecordFailure{"cannot derive traffic keys"});
  }
  write_.sequence = write_sequence;
  return {};
}

bool RecordLayer::derive(TrafficKeys& keys, std::span<const uint8_t> secret) {
  uint8_t copy[48];
  std::memcpy(copy, secret.data(), secret.size());  // `secret` may be keys.secret itself
  if (!expand_label(suite_, {copy, secret.size()}, "key", keys.key, key_bytes_) ||
      !expand_label(suite_, {copy, secret.size()}, "iv", keys.iv, kIvBytes, /*rekey=*/false)) {
    OPENSSL_cleanse(copy, sizeof copy);
    return false;
  }
  std::memcpy(keys.secret, copy, secret.size());
  OPENSSL_cleanse(copy, sizeof copy);
  forget_key(keys.key_id);
  keys.sequence = 0;
  keys.key_id = next_key_id.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool RecordLayer::update(TrafficKeys& keys) {
  // RFC 8446 section 7.2: application_traffic_secret_N+1.
  uint8_t next[48];
  const bool ok = expand_label(suite_, {keys.secret, hash_bytes_}, "traffic upd", next, hash_bytes_) &&
                  derive(keys, {next, hash_bytes_});
  OPENSSL_cleanse(next, sizeof next);
  return ok;
}

void RecordLayer::release_partial() {
  if (pool_ != nullptr) partial_.clear(*pool_);
  partial_need_ = 0;
}

RecordFailure RecordLayer::fail(uint8_t alert, std::string_view reason, CiphertextSink& sink) {
  if (!write_closed_ && !dead_ && alert != 0) {
    const uint8_t body[2] = {2, alert};  // fatal
    const std::span<const uint8_t> piece(body);
    (void)seal_record(kAlert, {&piece, 1}, 0, sizeof body, 0, sink);
  }
  dead_ = true;
  write_closed_ = true;
  release_partial();
  ERR_clear_error();
  return RecordFailure{reason};
}

std::expected<RecordLayer::Step, RecordFailure> RecordLayer::open_next(std::span<const uint8_t>& input,
                                                                       std::span<uint8_t> scratch,
                                                                       CiphertextSink& sink) {
  assert(installed());
  if (dead_) return std::unexpected(RecordFailure{"tls record layer failed"});
  if (partial_.empty() && input.size() >= kRecordHeaderBytes) {
    const size_t body = record_body_length(input.data());
    if (body > kMaxRecordBody) return std::unexpected(fail(kAlertRecordOverflow, "record overflow", sink));
    if (input.size() >= kRecordHeaderBytes + body) {
      // The common case: a whole record in this read, opened in place.
      const std::span<const uint8_t> header = input.first(kRecordHeaderBytes);
      const std::span<const uint8_t> record_body = input.subspan(kRecordHeaderBytes, body);
      input = input.subspan(kRecordHeaderBytes + body);
      return open_record(header, record_body, scratch, sink);
    }
  }
  if (input.empty()) return Step{Opened::need_more, {}};
  // Header first (it may arrive a byte at a time), then the rest of the record.
  const size_t want = partial_need_ != 0 ? partial_need_ : kRecordHeaderBytes;
  const size_t take = std::min(want - partial_.size(), input.size());
  if (!partial_.append(*pool_, input.first(take))) {
    return std::unexpected(fail(kAlertInternalError, "buffer pool exhausted", sink));
  }
  input = input.subspan(take);
  uint8_t* record = workspace().assembled;
  if (partial_need_ == 0) {
    if (partial_.size() < kRecordHeaderBytes) return Step{Opened::need_more, {}};
    partial_.copy_to({record, kRecordHeaderBytes});
    const size_t body = record_body_length(record);
    if (body > kMaxRecordBody) return std::unexpected(fail(kAlertRecordOverflow, "record overflow", sink));
    partial_need_ = static_cast<uint32_t>(kRecordHeaderBytes + body);
    const size_t rest = std::min(partial_need_ - partial_.size(), input.size());  // the body may be here too
    if (!partial_.append(*pool_, input.first(rest))) {
      return std::unexpected(fail(kAlertInternalError, "buffer pool exhausted", sink));
    }
    input = input.subspan(rest);
  }
  if (partial_.size() < partial_need_) return Step{Opened::need_more, {}};
  // The opened plaintext lands in `scratch` or the workspace's `opened`,
  // never in `assembled`, so the blocks can go back right away.
  const size_t size = partial_need_;
  partial_.copy_to({record, size});
  release_partial();
  return open_record({record, kRecordHeaderBytes}, {record + kRecordHeaderBytes, size - kRecordHeaderBytes}, scratch,
                     sink);
}

std::expected<RecordLayer::Step, RecordFailure> RecordLayer::open_record(std::span<const uint8_t> header,
                                                                         std::span<const uint8_t> body,
                                                                         std::span<uint8_t> scratch,
                                                                         CiphertextSink& sink) {
  if (header[0] != kApplicationData) {
    return std::unexpected(fail(kAlertUnexpectedMessage,
                                header[0] == kChangeCipherSpec ? "change_cipher_spec after handshake"
                                                               : "unprotected record after handshake",
                                sink));
  }
  if (body.size() < 1 + kTagBytes) return std::unexpected(fail(kAlertDecodeError, "record too short", sink));
  if (read_.sequence == UINT64_MAX) return std::unexpected(fail(kAlertInternalError, "sequence exhausted", sink));
  const size_t sealed_bytes = body.size() - kTagBytes;
  uint8_t* out = sealed_bytes <= scratch.size() ? scratch.data() : workspace().opened;
  switch (open_body(suite_, read_, header, body.first(sealed_bytes), body.data() + sealed_bytes, out)) {
    case BodyOpened::opened:
      break;
    case BodyOpened::bad_tag:
      return std::unexpected(fail(kAlertBadRecordMac, "bad record mac", sink));
    case BodyOpened::cipher_failure:
      return std::unexpected(fail(kAlertInternalError, "cipher failure", sink));
  }
  ++read_.sequence;

  // TLSInnerPlaintext: content, then the real type, then zero padding.
  size_t inner = sealed_bytes;
  while (inner > 0 && out[inner - 1] == 0) --inner;
  if (inner == 0) return std::unexpected(fail(kAlertUnexpectedMessage, "record without content type", sink));
  const uint8_t type = out[inner - 1];
  const std::span<uint8_t> content(out, inner - 1);
  if (content.size() > kMaxRecordPlaintext) return std::unexpected(fail(kAlertRecordOverflow, "record overflow", sink));
  switch (type) {
    case kApplicationData:
      if (content.empty()) {
        // Allowed and meaningless, but free for a peer to send: bounded as
        // OpenSSL bounds them.
        if (++empty_records_ > kMaxEmptyRecords) {
          return std::unexpected(fail(kAlertUnexpectedMessage, "too many empty records", sink));
        }
        return Step{Opened::handled, {}};
      }
      empty_records_ = 0;
      key_updates_ = 0;
      return Step{Opened::plaintext, content};
    case kAlert:
      // RFC 8446 section 5.4: alert and handshake records are never empty.
      if (content.empty()) return std::unexpected(fail(kAlertUnexpectedMessage, "empty alert record", sink));
      // As OpenSSL 3.0 answers (the differential test in tls_session_test
      // compares every verdict here with OpenSSL's).
      if (content.size() != 2) return std::unexpected(fail(kAlertUnexpectedMessage, "malformed alert", sink));
      if (content[1] == kAlertCloseNotify) return Step{Opened::peer_closed, {}};
      // A peer's fatal alert is not answered (RFC 8446 section 6.2).
      dead_ = true;
      write_closed_ = true;
      return std::unexpected(RecordFailure{"alert received"});
    case kHandshake:
      if (content.empty()) return std::unexpected(fail(kAlertUnexpectedMessage, "empty handshake record", sink));
      empty_records_ = 0;
      return on_handshake_message(content, sink);
    default:
      return std::unexpected(fail(kAlertUnexpectedMessage, "unexpected content type", sink));
  }
}

std::expected<RecordLayer::Step, RecordFailure> RecordLayer::on_handshake_message(std::span<const uint8_t> messages,
                                                                                  CiphertextSink& sink) {
  // Post-handshake messages are tiny; one split across records (legal, and
  // never done by real stacks) is refused rather than buffered.
  while (!messages.empty()) {
    if (messages.size() < 4) return std::unexpected(fail(kAlertUnexpectedMessage, "fragmented handshake message", sink));
    const size_t length = size_t{messages[1]} << 16 | size_t{messages[2]} << 8 | messages[3];
    if (messages.size() - 4 < length) {
      return std::unexpected(fail(kAlertUnexpectedMessage, "fragmented handshake message", sink));
    }
    const uint8_t type = messages[0];
    const std::span<const uint8_t> body = messages.subspan(4, length);
    messages = messages.subspan(4 + length);
    // The layer serves the server side: a client never sends
    // NewSessionTicket (RFC 8446 section 4.6.1), nor anything but KeyUpdate
    // after its Finished (no post-handshake authentication is requested).
    if (type != kHandshakeKeyUpdate) {
      return std::unexpected(fail(kAlertUnexpectedMessage, "unexpected handshake message", sink));
    }
    // Longer than a KeyUpdate can be: illegal_parameter, as OpenSSL answers
    // an oversized handshake message.
    if (length > 1) return std::unexpected(fail(kAlertIllegalParameter, "malformed key_update", sink));
    if (length != 1) return std::unexpected(fail(kAlertDecodeError, "malformed key_update", sink));
    if (body[0] > 1) return std::unexpected(fail(kAlertIllegalParameter, "malformed key_update", sink));
    // RFC 8446 section 5.1: a KeyUpdate ends its record (the next byte is
    // under the next key).
    if (!messages.empty()) {
      return std::unexpected(fail(kAlertUnexpectedMessage, "key_update not at the end of its record", sink));
    }
    // Each update costs a key schedule: a peer gets kMaxKeyUpdates of them
    // between two application data records, as BoringSSL allows.
    if (++key_updates_ > kMaxKeyUpdates) {
      return std::unexpected(fail(kAlertUnexpectedMessage, "too many key updates", sink));
    }
    if (!update(read_)) return std::unexpected(fail(kAlertInternalError, "cannot derive traffic keys", sink));
    if (body[0] == 1 && !write_closed_) {
      // update_requested: answer under the current key, then switch.
      const uint8_t answer[5] = {kHandshakeKeyUpdate, 0, 0, 1, 0};
      const std::span<const uint8_t> piece(answer);
      if (auto sent = seal_record(kHandshake, {&piece, 1}, 0, sizeof answer, 0, sink); !sent) {
        return std::unexpected(sent.error());
      }
      if (!update(write_)) return std::unexpected(fail(kAlertInternalError, "cannot derive traffic keys", sink));
    }
  }
  return Step{Opened::handled, {}};
}

std::expected<void, RecordFailure> RecordLayer::seal(std::span<const std::span<const uint8_t>> pieces,
                                                     CiphertextSink& sink) {
  assert(installed());
  if (write_closed_) return std::unexpected(RecordFailure{dead_ ? "tls record layer failed" : "write after close"});
  size_t total = 0;
  for (std::span<const uint8_t> piece : pieces) total += piece.size();
  for (size_t offset = 0; offset < total; offset += kMaxRecordPlaintext) {
    const size_t length = std::min(kMaxRecordPlaintext, total - offset);
    if (auto sealed = seal_record(kApplicationData, pieces, offset, length, 0, sink); !sealed) return sealed;
  }
  return {};
}

void RecordLayer::seal_close_notify(CiphertextSink& sink) {
  if (!installed() || write_closed_) return;
  const uint8_t body[2] = {1, kAlertCloseNotify};  // warning
  const std::span<const uint8_t> piece(body);
  (void)seal_record(kAlert, {&piece, 1}, 0, sizeof body, 0, sink);
  write_closed_ = true;
}

std::expected<void, RecordFailure> RecordLayer::seal_inner_for_tests(uint8_t inner_type,
                                                                     std::span<const uint8_t> content,
                                                                     size_t zero_padding, CiphertextSink& sink) {
  assert(installed());
  if (write_closed_) return std::unexpected(RecordFailure{"write after close"});
  if (content.size() + 1 + zero_padding > kMaxRecordBody - kTagBytes) {
    return std::unexpected(RecordFailure{"record overflow"});
  }
  return seal_record(inner_type, {&content, 1}, 0, content.size(), zero_padding, sink);
}

std::expected<void, RecordFailure> RecordLayer::next_write_key_for_tests() {
  assert(installed());
  if (!update(write_)) return std::unexpected(RecordFailure{"cannot derive traffic keys"});
  return {};
}

std::expected<void, RecordFailure> RecordLayer::seal_record(uint8_t content_type,
                                                            std::span<const std::span<const uint8_t>> pieces,
                                                            size_t first_offset, size_t length,
                                                            size_t zero_padding, CiphertextSink& sink) {
  assert(length + 1 + zero_padding <= kMaxRecordBody - kTagBytes);
  if (write_.sequence == UINT64_MAX) {
    dead_ = write_closed_ = true;
    return std::unexpected(RecordFailure{"sequence exhausted"});
  }
  CipherWorkspace& w = workspace();
  const size_t body = length + 1 + zero_padding + kTagBytes;
  // Sealed in place in the sink's queue when it has the room in one piece
  // (a record up to a pool block); else in the workspace, then appended.
  uint8_t* const direct = sink.reserve_ciphertext(kRecordHeaderBytes + body);
  uint8_t* out = direct != nullptr ? direct : w.sealed;
  out[0] = kApplicationData;  // the outer type of every protected record
  out[1] = 0x03;
  out[2] = 0x03;
  out[3] = static_cast<uint8_t>(body >> 8);
  out[4] = static_cast<uint8_t>(body);
  const bool ok = seal_body(suite_, write_, content_type, pieces, first_offset, length, zero_padding, out);
  if (!ok) {
    dead_ = write_closed_ = true;
    ERR_clear_error();
    return std::unexpected(RecordFailure{"cipher failure"});
  }
  const size_t at = kRecordHeaderBytes + body;
  ++write_.sequence;
  if (direct != nullptr) {
    sink.commit_ciphertext(at);
    return {};
  }
  if (!sink.append_ciphertext({out, at})) {
    dead_ = write_closed_ = true;
    return std::unexpected(RecordFailure{"sink full"});
  }
  return {};
}

}  // namespace mf::tls
