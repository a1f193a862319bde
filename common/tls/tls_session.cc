#include "common/tls/tls_session.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <utility>

namespace mf::tls {

// What a TLS 1.3 server session keeps to replace its SSL after the
// handshake. Allocated by the first traffic secret OpenSSL logs.
struct Session::Offload {
  // Records sent under the write traffic secret before the handoff (session
  // tickets): the first sequence number of the RecordLayer. Counted from the
  // moment OpenSSL logs that secret, which it does between two records.
  void count_written(const uint8_t* data, size_t size) {
    if (!counting) return;
    for (size_t i = 0; i < size;) {
      if (body_left > 0) {
        const size_t n = std::min(body_left, size - i);
        body_left -= n;
        i += n;
        continue;
      }
      header[header_have++] = data[i++];
      if (header_have == kRecordHeaderBytes) {
        body_left = record_body_length(header);
        header_have = 0;
        ++records_written;
      }
    }
  }

  ~Offload() {
    OPENSSL_cleanse(read_secret, sizeof read_secret);
    OPENSSL_cleanse(write_secret, sizeof write_secret);
  }

  RecordLayer records;
  // During the handshake.
  uint8_t read_secret[48] = {};
  uint8_t write_secret[48] = {};
  uint8_t read_secret_bytes = 0;
  uint8_t write_secret_bytes = 0;
  bool counting = false;
  uint8_t header_have = 0;
  uint8_t header[kRecordHeaderBytes] = {};
  size_t body_left = 0;
  uint64_t records_written = 0;
  // After: what callers ask of a finished handshake.
  std::string server_name;
  std::string alpn;
  bool resumed = false;
};

void Session::OffloadDeleter::operator()(Offload* offload) const { delete offload; }

// OpenSSL's key-log callback is the one way OpenSSL 3.0 exposes TLS 1.3
// traffic secrets. Lines are "LABEL <client random hex> <secret hex>".
//
// OpenSSL formats every line with one sprintf per byte before it calls the
// callback, whether the line is wanted or not: five lines of a TLS 1.3
// handshake cost about 280,000 instructions, a tenth of a full handshake
// (docs/benchmarks.md, "Instructions per full handshake"). Only the two
// application traffic secrets are needed, so the callback is set on the
// context only while a server session that has sent its EncryptedExtensions
// runs a handshake step (arm() and Session::advance_handshake()): the
// handshake traffic secrets, and TLS 1.2's CLIENT_RANDOM line, are never
// formatted. A server context is used by one shard thread (docs/security.md,
// "The TLS 1.3 record layer"), so the switch is that thread's alone.
struct SecretCapture {
  static void on_line(const SSL* ssl, const char* line) {
    auto* s = static_cast<Session*>(SSL_get_app_data(ssl));
    if (s == nullptr || s->handshake_done_ || !SSL_is_server(ssl) || !record_layer_enabled()) return;
    const std::string_view text(line);
    const bool client = text.starts_with("CLIENT_TRAFFIC_SECRET_0 ");
    const bool server = text.starts_with("SERVER_TRAFFIC_SECRET_0 ");
    if (!client && !server) return;
    const size_t space = text.rfind(' ');
    const std::string_view hex = text.substr(space + 1);
    if (hex.size() % 2 != 0 || hex.size() > 96) return;
    if (s->offload_ == nullptr) {
      s->offload_.reset(new (std::nothrow) Session::Offload());
      if (s->offload_ == nullptr) return;  // stays on OpenSSL
    }
    Session::Offload& o = *s->offload_;
    uint8_t* out = client ? o.read_secret : o.write_secret;  // a server reads the client's
    for (size_t i = 0; i < hex.size(); i += 2) {
      const int high = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[i]));
      const int low = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[i + 1]));
      if (high < 0 || low < 0) return;
      out[i / 2] = static_cast<uint8_t>(high << 4 | low);
    }
    (client ? o.read_secret_bytes : o.write_secret_bytes) = static_cast<uint8_t>(hex.size() / 2);
    if (server) {
      o.counting = true;
      o.records_written = 0;
    }
  }

  // Info callback of capturing contexts. OpenSSL calls it as each handshake
  // message is done; TLS 1.3 servers write EncryptedExtensions after they
  // logged the handshake traffic secrets and before they derive the
  // application ones (in the same step, or in the next for the client's).
  static void arm(const SSL* ssl, int where, int) {
    if ((where & SSL_CB_LOOP) == 0 || SSL_get_state(ssl) != TLS_ST_SW_ENCRYPTED_EXTENSIONS) return;
    auto* s = static_cast<Session*>(SSL_get_app_data(ssl));
    if (s == nullptr || s->key_log_armed_ || s->handshake_done_ || !record_layer_enabled()) return;
    s->key_log_armed_ = true;
    SSL_CTX_set_keylog_callback(SSL_get_SSL_CTX(ssl), &on_line);
  }

  // Around each handshake step of `s`: the context logs keys only while an
  // armed session runs.
  static void before_step(Session& s) {
    if (s.key_log_armed_) SSL_CTX_set_keylog_callback(SSL_get_SSL_CTX(s.ssl_), &on_line);
  }
  static void after_step(Session& s) {
    if (s.key_log_armed_) SSL_CTX_set_keylog_callback(SSL_get_SSL_CTX(s.ssl_), nullptr);
  }
};

void capture_traffic_secrets(SSL_CTX* context) { SSL_CTX_set_info_callback(context, &SecretCapture::arm); }

namespace {
std::atomic<bool> hand_over_enabled{false};
#if defined(MF_TEST_HOOKS)
std::atomic<int64_t> sequence_skew{0};
#endif
}  // namespace

void set_record_layer_enabled(bool enabled) { hand_over_enabled.store(enabled, std::memory_order_relaxed); }
bool record_layer_enabled() { return hand_over_enabled.load(std::memory_order_relaxed); }

#if defined(MF_TEST_HOOKS)
void set_record_layer_sequence_skew_for_tests(int64_t skew) { sequence_skew.store(skew); }
#endif

// One BIO per session serves both directions: reads come from the span handed
// to feed(), writes go straight into the session's sink.
struct SessionBio {
  static Session& session(BIO* bio) { return *static_cast<Session*>(BIO_get_data(bio)); }

  static int write(BIO* bio, const char* data, size_t size, size_t* written) {
    BIO_clear_retry_flags(bio);
    Session& s = session(bio);
    if (s.offload_ != nullptr) s.offload_->count_written(reinterpret_cast<const uint8_t*>(data), size);
    if (!s.sink_->append_ciphertext({reinterpret_cast<const uint8_t*>(data), size})) {
      // Not a retry: OpenSSL reports the failure and the connection closes.
      s.sink_failed_ = true;
      *written = 0;
      return 0;
    }
    *written = size;
    return 1;
  }

  static int read(BIO* bio, char* out, size_t size, size_t* read) {
    BIO_clear_retry_flags(bio);
    Session& s = session(bio);
    if (s.input_size_ == 0) {
      BIO_set_retry_read(bio);
      *read = 0;
      return 0;
    }
    const size_t n = std::min<size_t>(size, s.input_size_);
    std::memcpy(out, s.input_, n);
    s.input_ += n;
    s.input_size_ -= static_cast<uint32_t>(n);
    *read = n;
    return 1;
  }

  // OpenSSL flushes after each handshake flight; everything else is unsupported.
  static long ctrl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

  // Created once per process and never freed.
  static BIO_METHOD* method() {
    static BIO_METHOD* const method = [] {
      const int index = BIO_get_new_index();
      BIO_METHOD* m = index == -1 ? nullptr : BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "mf tls session");
      if (m != nullptr && (BIO_meth_set_write_ex(m, &write) != 1 || BIO_meth_set_read_ex(m, &read) != 1 ||
                           BIO_meth_set_ctrl(m, &ctrl) != 1)) {
        BIO_meth_free(m);
        m = nullptr;
      }
      return m;
    }();
    return method;
  }
};

Session::Session(Session&& other) noexcept
    : ssl_(std::exchange(other.ssl_, nullptr)),
      offload_(std::move(other.offload_)),
      sink_(other.sink_),
      pool_(other.pool_),
      input_(other.input_),
      input_size_(other.input_size_),
      handshake_done_(other.handshake_done_),
      sink_failed_(other.sink_failed_),
      key_log_armed_(other.key_log_armed_) {
  if (ssl_ != nullptr) {
    BIO_set_data(SSL_get_rbio(ssl_), this);
    SSL_set_app_data(ssl_, this);
  }
}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    SSL_free(ssl_);
    ssl_ = std::exchange(other.ssl_, nullptr);
    offload_ = std::move(other.offload_);
    sink_ = other.sink_;
    input_ = other.input_;
    input_size_ = other.input_size_;
    pool_ = other.pool_;
    handshake_done_ = other.handshake_done_;
    sink_failed_ = other.sink_failed_;
    key_log_armed_ = other.key_log_armed_;
    if (ssl_ != nullptr) {
      BIO_set_data(SSL_get_rbio(ssl_), this);
      SSL_set_app_data(ssl_, this);
    }
  }
  return *this;
}

Session::~Session() { SSL_free(ssl_); }

std::expected<void, std::string> Session::init(const Context& context, Role role, CiphertextSink* sink,
                                               std::string_view sni_for_client, BlockPool* partial_records) {
  assert(ssl_ == nullptr && offload_ == nullptr && sink != nullptr && context.native() != nullptr);
  BIO_METHOD* method = SessionBio::method();
  if (method == nullptr) {
    ERR_clear_error();
    return std::unexpected("tls: cannot create the session BIO method");
  }
  SSL* ssl = SSL_new(context.native());
  BIO* bio = ssl != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl);
    ERR_clear_error();
    return std::unexpected("tls: cannot create session: out of memory");
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);  // the SSL takes the BIO's only reference
  SSL_set_app_data(ssl, this);   // for SecretCapture

  if (role == Role::server) {
    SSL_set_accept_state(ssl);
  } else {
    SSL_set_connect_state(ssl);
    if (!sni_for_client.empty()) {
      const std::string host(sni_for_client);
      // SNI carries host names only (RFC 6066); IP literals are verified as such.
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
        if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1 || SSL_set1_host(ssl, host.c_str()) != 1) {
          SSL_free(ssl);
          ERR_clear_error();
          return std::unexpected("tls: invalid server name \"" + host + "\"");
        }
      }
    }
  }
  ERR_clear_error();
  ssl_ = ssl;
  sink_ = sink;
  pool_ = partial_records;
  input_ = nullptr;
  input_size_ = 0;
  handshake_done_ = false;
  sink_failed_ = false;
  key_log_armed_ = false;
  return {};
}

std::expected<void, Failure> Session::start_client_handshake() {
  assert(ssl_ != nullptr && !SSL_is_server(ssl_) && !handshake_done_);
  input_ = nullptr;
  input_size_ = 0;
  auto completed = advance_handshake();
  if (!completed) return std::unexpected(completed.error());
  return {};
}

std::expected<bool, Failure> Session::advance_handshake() {
  SecretCapture::before_step(*this);
  const int result = SSL_do_handshake(ssl_);
  SecretCapture::after_step(*this);
  if (result == 1) {
    handshake_done_ = true;
    try_offload();
    return true;
  }
  if (SSL_get_error(ssl_, result) != SSL_ERROR_WANT_READ) return std::unexpected(take_failure());
  assert(input_size_ == 0);
  ERR_clear_error();
  return false;
}

void Session::try_offload() {
  if (offload_ == nullptr) return;
  Offload& o = *offload_;
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  const uint16_t suite = cipher != nullptr ? SSL_CIPHER_get_protocol_id(cipher) : 0;
  // Bytes OpenSSL already holds (read ahead, or a record it began) would be
  // lost; with read_ahead off there are none after the client's Finished.
  // The layer writes records of up to 2^14 bytes and counts its sequence
  // from the application traffic secret: a client that negotiated
  // max_fragment_length (RFC 6066) needs smaller records, and accepted early
  // data (RFC 8446 section 4.2.10) would put end_of_early_data records
  // under other keys. Both stay on OpenSSL.
  SSL_SESSION* negotiated = SSL_get_session(ssl_);
  const bool max_fragment_length =
      negotiated != nullptr && SSL_SESSION_get_max_fragment_length(negotiated) != TLSEXT_max_fragment_length_DISABLED;
  if (!SSL_is_server(ssl_) || SSL_version(ssl_) != TLS1_3_VERSION || !RecordLayer::supports(suite) ||
      o.read_secret_bytes == 0 || o.read_secret_bytes != o.write_secret_bytes || SSL_has_pending(ssl_) == 1 ||
      max_fragment_length || SSL_get_early_data_status(ssl_) == SSL_EARLY_DATA_ACCEPTED || sink_failed_) {
    offload_.reset();
    return;
  }
  uint64_t first_write_sequence = o.records_written;
#if defined(MF_TEST_HOOKS)
  first_write_sequence += static_cast<uint64_t>(sequence_skew.load());
#endif
  if (!record_layer_enabled() || pool_ == nullptr ||
      !o.records.install(suite, {o.read_secret, o.read_secret_bytes}, {o.write_secret, o.write_secret_bytes},
                         first_write_sequence, *pool_)) {
    offload_.reset();
    return;
  }
  OPENSSL_cleanse(o.read_secret, sizeof o.read_secret);
  OPENSSL_cleanse(o.write_secret, sizeof o.write_secret);
  o.counting = false;
  if (const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name); name != nullptr) o.server_name = name;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_size = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_size);
  o.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_size);
  o.resumed = SSL_session_reused(ssl_) == 1;
  SSL_free(std::exchange(ssl_, nullptr));
  ERR_clear_error();
}

std::expected<RecordLayer::Step, Failure> Session::open_next_record(std::span<const uint8_t>& input,
                                                                   std::span<uint8_t> scratch) {
  assert(record_layer_active());
  auto step = offload_->records.open_next(input, scratch, *sink_);
  if (!step) return std::unexpected(Failure{step.error().reason, 0});
  return *step;
}

std::expected<Session::ReadResult, Failure> Session::read_plaintext(std::span<uint8_t> scratch) {
  size_t size = 0;
  if (SSL_read_ex(ssl_, scratch.data(), scratch.size(), &size) == 1) {
    return ReadResult{ReadStatus::plaintext, size};
  }
  switch (SSL_get_error(ssl_, 0)) {
    case SSL_ERROR_WANT_READ:
      assert(input_size_ == 0);
      ERR_clear_error();
      return ReadResult{ReadStatus::needs_input, 0};
    case SSL_ERROR_ZERO_RETURN:
      input_ = nullptr;  // anything after close_notify is meaningless
      input_size_ = 0;
      ERR_clear_error();
      return ReadResult{ReadStatus::peer_closed, 0};
    default:
      return std::unexpected(take_failure());
  }
}

std::expected<void, Failure> Session::write(std::span<const uint8_t> plaintext) {
  if (!handshake_done_) return std::unexpected(Failure{"write before handshake", 0});
  if (plaintext.empty()) return {};
  if (ssl_ == nullptr) return seal({&plaintext, 1});
  return write_record_data(plaintext.data(), plaintext.size());
}

std::expected<void, Failure> Session::write_vectored(std::span<const std::span<const uint8_t>> pieces,
                                                     std::span<uint8_t> scratch) {
  if (!handshake_done_) return std::unexpected(Failure{"write before handshake", 0});
  if (pieces.size() == 1) return write(pieces.front());
  if (ssl_ == nullptr) return seal(pieces);  // seals straight from the pieces
  assert(!scratch.empty());
  size_t used = 0;
  for (std::span<const uint8_t> piece : pieces) {
    if (used == 0 && piece.size() >= scratch.size()) {
      // Whole scratch-fulls go straight from the caller's memory; the record
      // layout is the same as if gathered.
      const size_t direct = piece.size() - piece.size() % scratch.size();
      if (auto ok = write_record_data(piece.data(), direct); !ok) return ok;
      piece = piece.subspan(direct);
    }
    while (!piece.empty()) {
      const size_t n = std::min(piece.size(), scratch.size() - used);
      std::memcpy(scratch.data() + used, piece.data(), n);
      used += n;
      piece = piece.subspan(n);
      if (used == scratch.size()) {
        if (auto ok = write_record_data(scratch.data(), used); !ok) return ok;
        used = 0;
      }
    }
  }
  if (used == 0) return {};
  return write_record_data(scratch.data(), used);
}

std::expected<void, Failure> Session::write_record_data(const uint8_t* data, size_t size) {
  size_t written = 0;
  if (SSL_write_ex(ssl_, data, size, &written) != 1) return std::unexpected(take_failure());
  // Partial writes are off and the sink never asks to retry.
  assert(written == size);
  ERR_clear_error();
  return {};
}

std::expected<void, Failure> Session::seal(std::span<const std::span<const uint8_t>> pieces) {
  assert(record_layer_active());
  auto sealed = offload_->records.seal(pieces, *sink_);
  if (!sealed) return std::unexpected(Failure{sealed.error().reason, 0});
  return {};
}

void Session::send_close_notify() {
  if (record_layer_active()) {
    offload_->records.seal_close_notify(*sink_);
    return;
  }
  if (ssl_ == nullptr || !handshake_done_) return;
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string_view Session::alpn() const {
  if (record_layer_active()) return offload_->alpn;
  if (ssl_ == nullptr) return {};
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(ssl_, &data, &size);
  return {reinterpret_cast<const char*>(data), size};
}

std::string_view Session::server_name() const {
  if (record_layer_active()) return offload_->server_name;
  const char* name = ssl_ != nullptr ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
  return name != nullptr ? std::string_view(name) : std::string_view();
}

bool Session::resumed() const {
  if (record_layer_active()) return offload_->resumed;
  return ssl_ != nullptr && SSL_session_reused(ssl_) == 1;
}

int Session::protocol_version() const {
  if (record_layer_active()) return TLS1_3_VERSION;
  return ssl_ != nullptr ? SSL_version(ssl_) : 0;
}

Failure Session::take_failure() {
  const unsigned long code = ERR_get_error();
  std::string_view reason;
  if (sink_failed_) {
    reason = "sink full";
  } else if (const char* text = code != 0 ? ERR_reason_error_string(code) : nullptr; text != nullptr) {
    reason = text;
  } else {
    reason = handshake_done_ ? "tls" : "handshake";
  }
  ERR_clear_error();
  input_ = nullptr;
  input_size_ = 0;
  return Failure{reason, code};
}

}  // namespace mf::tls
