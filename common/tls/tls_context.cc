#include "common/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <ctime>
#include <string_view>
#include <system_error>
#include <utility>

#include "common/tls/tls_session.h"

namespace mf::tls {
namespace {

// Mozilla "intermediate" TLS 1.2 suites without DHE: forward secret AEAD only.
constexpr const char* kDefaultTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Tickets are only valid between contexts that agree on this.
constexpr unsigned char kSessionIdContext[] = "mf-edge";

struct SslCtxFree { void operator()(SSL_CTX* p) const { SSL_CTX_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Start-up runs on threads that later serve connections: leave no errors behind.
struct ErrorQueueScrub {
  ~ErrorQueueScrub() { ERR_clear_error(); }
};

using Error = std::unexpected<std::string>;

// The most specific OpenSSL reason for the failure that just happened.
std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  ERR_clear_error();
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

bool last_error_is_missing_pem() {
  const unsigned long code = ERR_peek_last_error();
  return ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
}

// Never prompt on a terminal for a pass phrase: encrypted keys are refused.
int refuse_password(char*, int, int, void*) { return -1; }

std::expected<std::string, std::string> read_file(const std::string& path, std::string_view what) {
  auto failure = [&](int error) {
    return Error("tls: cannot read " + std::string(what) + " " + path + ": " +
                 std::generic_category().message(error));
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return failure(errno);
  std::string contents;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) contents.append(buffer, n);
  const int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) return failure(error);
  return contents;
}

BioPtr memory_bio(const std::string& bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

std::string format_time(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return "an unreadable time";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

// Unix seconds of an ASN.1 time; 0 when unreadable.
int64_t unix_seconds(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::expected<std::vector<X509Ptr>, std::string> load_certificate_chain(const std::string& path) {
  auto pem = read_file(path, "certificate");
  if (!pem) return Error(std::move(pem.error()));
  BioPtr bio = memory_bio(*pem);
  std::vector<X509Ptr> chain;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, &refuse_password, nullptr));
    if (cert != nullptr) {
      chain.push_back(std::move(cert));
      continue;
    }
    if (!chain.empty() && last_error_is_missing_pem()) break;  // end of the bundle
    if (chain.empty() && last_error_is_missing_pem()) {
      ERR_clear_error();
      return Error("tls: certificate " + path + " holds no PEM certificate");
    }
    return Error("tls: cannot parse certificate " + path + ": " + openssl_reason());
  }
  ERR_clear_error();
  return chain;
}

std::expected<PkeyPtr, std::string> load_private_key(const std::string& path) {
  auto pem = read_file(path, "private key");
  if (!pem) return Error(std::move(pem.error()));
  BioPtr bio = memory_bio(*pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, &refuse_password, nullptr));
  OPENSSL_cleanse(pem->data(), pem->size());
  if (key == nullptr) {
    return Error("tls: cannot parse private key " + path + " (PEM, unencrypted): " + openssl_reason());
  }
  return key;
}

// One OCSP response a context staples, for the leaf it vouches for.
struct OcspStaple {
  X509Ptr leaf;
  std::string der;             // the file's bytes, as sent
  int64_t next_update_s = 0;   // 0: none given
};
struct OcspStaples {
  std::vector<OcspStaple> entries;
};

void free_staples_slot(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<OcspStaples*>(ptr); }

// Owns a server's OCSP responses for as long as the SSL_CTX (and its SSLs) live.
int staples_slot() {
  static const int slot = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_staples_slot);
  return slot;
}

// Called during a handshake whose client sent status_request, once the
// certificate is chosen (after SNI: the arg is the chosen context's). A
// response past its nextUpdate is not sent: a client would refuse it.
int staple_ocsp(SSL* ssl, void* argument) {
  const auto* staples = static_cast<const OcspStaples*>(argument);
  X509* served = SSL_get_certificate(ssl);
  if (staples == nullptr || served == nullptr) return SSL_TLSEXT_ERR_NOACK;
  for (const OcspStaple& staple : staples->entries) {
    if (X509_cmp(staple.leaf.get(), served) != 0) continue;
    if (staple.next_update_s != 0 && std::time(nullptr) >= staple.next_update_s) return SSL_TLSEXT_ERR_NOACK;
    auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(staple.der.size()));
    if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
    std::memcpy(copy, staple.der.data(), staple.der.size());
    // OpenSSL owns `copy` from here and frees it with the SSL.
    if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(staple.der.size())) != 1) {
      OPENSSL_free(copy);
      return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// Reads a DER OCSPResponse and proves it answers for `leaf`: it parses, its
// status is successful, and one of its single responses carries the leaf's
// CertID (serial number, and with an issuer in the chain its name and key
// hashes too). The responder's signature is the client's to check.
std::expected<OcspStaple, std::string> load_ocsp_response(const std::string& path, X509* leaf, X509* issuer,
                                                          const std::string& cert_path) {
  auto der = read_file(path, "OCSP response");
  if (!der) return Error(std::move(der.error()));
  const auto* bytes = reinterpret_cast<const unsigned char*>(der->data());
  struct ResponseFree { void operator()(OCSP_RESPONSE* p) const { OCSP_RESPONSE_free(p); } };
  struct BasicFree { void operator()(OCSP_BASICRESP* p) const { OCSP_BASICRESP_free(p); } };
  struct IdFree { void operator()(OCSP_CERTID* p) const { OCSP_CERTID_free(p); } };
  std::unique_ptr<OCSP_RESPONSE, ResponseFree> response(d2i_OCSP_RESPONSE(nullptr, &bytes, static_cast<long>(der->size())));
  if (response == nullptr || bytes != reinterpret_cast<const unsigned char*>(der->data()) + der->size()) {
    ERR_clear_error();
    return Error("tls: OCSP response " + path + " is not a DER OCSPResponse");
  }
  const int status = OCSP_response_status(response.get());
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    return Error("tls: OCSP response " + path + " is not successful (" + OCSP_response_status_str(status) + ")");
  }
  std::unique_ptr<OCSP_BASICRESP, BasicFree> basic(OCSP_response_get1_basic(response.get()));
  if (basic == nullptr) return Error("tls: OCSP response " + path + " holds no basic response");
  const ASN1_INTEGER* serial = X509_get0_serialNumber(leaf);
  for (int i = 0; i < OCSP_resp_count(basic.get()); ++i) {
    OCSP_SINGLERESP* single = OCSP_resp_get0(basic.get(), i);
    const OCSP_CERTID* id = OCSP_SINGLERESP_get0_id(single);
    ASN1_OCTET_STRING* name_hash = nullptr;
    ASN1_OBJECT* digest_oid = nullptr;
    ASN1_OCTET_STRING* key_hash = nullptr;
    ASN1_INTEGER* id_serial = nullptr;
    if (OCSP_id_get0_info(&name_hash, &digest_oid, &key_hash, &id_serial, const_cast<OCSP_CERTID*>(id)) != 1) continue;
    if (ASN1_INTEGER_cmp(id_serial, serial) != 0) continue;
    if (issuer != nullptr) {
      const EVP_MD* digest = EVP_get_digestbyobj(digest_oid);
      std::unique_ptr<OCSP_CERTID, IdFree> expected(digest != nullptr ? OCSP_cert_to_id(digest, leaf, issuer) : nullptr);
      if (expected == nullptr || OCSP_id_cmp(expected.get(), id) != 0) continue;
    }
    int reason = 0;
    ASN1_GENERALIZEDTIME* revoked_at = nullptr;
    ASN1_GENERALIZEDTIME* this_update = nullptr;
    ASN1_GENERALIZEDTIME* next_update = nullptr;
    OCSP_single_get0_status(single, &reason, &revoked_at, &this_update, &next_update);
    OcspStaple staple;
    X509_up_ref(leaf);
    staple.leaf.reset(leaf);
    staple.der = std::move(*der);
    staple.next_update_s = next_update != nullptr ? unix_seconds(next_update) : 0;
    return staple;
  }
  ERR_clear_error();
  return Error("tls: OCSP response " + path + " does not answer for certificate " + cert_path);
}

struct LoadedPair {
  int key_type = 0;
  ServedCertificate served;
  std::optional<OcspStaple> staple;
};

// Loads one certificate/key pair into the context's slot for its key type.
std::expected<LoadedPair, std::string> use_certificate_key_pair(SSL_CTX* ctx, const CertificateKeyPair& pair) {
  const std::string& cert_path = pair.certificate_chain_path;
  const std::string& key_path = pair.private_key_path;
  auto chain = load_certificate_chain(cert_path);
  if (!chain) return Error(std::move(chain.error()));
  auto key = load_private_key(key_path);
  if (!key) return Error(std::move(key.error()));
  X509* leaf = chain->front().get();

  const int key_type = EVP_PKEY_get_base_id(key->get());
  if (key_type != EVP_PKEY_EC && key_type != EVP_PKEY_RSA) {
    return Error("tls: private key " + key_path + " is neither ECDSA nor RSA");
  }
  if (X509_check_private_key(leaf, key->get()) != 1) {
    ERR_clear_error();
    return Error("tls: private key " + key_path + " does not match certificate " + cert_path);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    return Error("tls: certificate " + cert_path + " expired at " + format_time(X509_get0_notAfter(leaf)));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    return Error("tls: certificate " + cert_path + " is not valid before " +
                 format_time(X509_get0_notBefore(leaf)));
  }
  LoadedPair loaded;
  loaded.key_type = key_type;
  loaded.served.certificate_chain_path = cert_path;
  loaded.served.not_after_s = unix_seconds(X509_get0_notAfter(leaf));
  if (!pair.ocsp_response_path.empty()) {
    auto staple = load_ocsp_response(pair.ocsp_response_path, leaf, chain->size() > 1 ? (*chain)[1].get() : nullptr,
                                     cert_path);
    if (!staple) return Error(std::move(staple.error()));
    loaded.served.ocsp_response_path = pair.ocsp_response_path;
    loaded.served.ocsp_next_update_s = staple->next_update_s;
    loaded.staple = std::move(*staple);
  }
  if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
    return Error("tls: cannot use certificate " + cert_path + ": " + openssl_reason());
  }
  for (size_t i = 1; i < chain->size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, (*chain)[i].get()) != 1) {
      return Error("tls: cannot use certificate chain " + cert_path + ": " + openssl_reason());
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return Error("tls: cannot use private key " + key_path + ": " + openssl_reason());
  }
  return loaded;
}

// ALPN protocol names in wire format: each prefixed by its length.
std::expected<std::string, std::string> encode_alpn(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& protocol : protocols) {
    if (protocol.empty() || protocol.size() > 255) {
      return Error("tls: invalid ALPN protocol name \"" + protocol + "\" (1 to 255 bytes)");
    }
    wire.push_back(static_cast<char>(protocol.size()));
    wire.append(protocol);
  }
  return wire;
}

void free_alpn_slot(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

// Owns the server's ALPN list for as long as the SSL_CTX (and its SSLs) live.
int alpn_slot() {
  static const int slot = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_alpn_slot);
  return slot;
}

// Picks the first server protocol the client offers. Only called when the
// client sent ALPN; a client without ALPN proceeds without a protocol.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_size, const unsigned char* offered,
                unsigned int offered_size, void* server_wire) {
  const std::string_view server = *static_cast<const std::string*>(server_wire);
  for (size_t s = 0; s < server.size(); s += 1 + static_cast<unsigned char>(server[s])) {
    const std::string_view wanted = server.substr(s + 1, static_cast<unsigned char>(server[s]));
    for (unsigned int c = 0; c < offered_size; c += 1 + offered[c]) {
      const unsigned int size = offered[c];
      if (c + 1 + size > offered_size) break;
      if (std::string_view(reinterpret_cast<const char*>(offered + c + 1), size) == wanted) {
        *out = offered + c + 1;
        *out_size = static_cast<unsigned char>(size);
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

std::expected<void, std::string> use_cipher_list(SSL_CTX* ctx, const std::string& configured) {
  const char* list = configured.empty() ? kDefaultTls12Ciphers : configured.c_str();
  if (SSL_CTX_set_cipher_list(ctx, list) != 1) {
    ERR_clear_error();
    return Error(std::string("tls: cipher list \"") + list + "\" selects no usable TLS 1.2 cipher");
  }
  return {};
}

}  // namespace

Context::Context(Context&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), served_(std::move(other.served_)) {}

Context& Context::operator=(Context&& other) noexcept {
  std::swap(ctx_, other.ctx_);
  std::swap(served_, other.served_);
  return *this;
}

Context::~Context() { SSL_CTX_free(ctx_); }

std::expected<Context, std::string> Context::make_server(const ServerContextConfig& config) {
  ErrorQueueScrub scrub;
  if (config.certificates.empty()) return Error("tls: server context needs at least one certificate");
  if (config.certificates.size() > 2) {
    return Error("tls: server context takes at most two certificates (one ECDSA, one RSA)");
  }
  if (config.min_version != TLS1_2_VERSION && config.min_version != TLS1_3_VERSION) {
    return Error("tls: minimum protocol version must be TLS 1.2 or TLS 1.3");
  }
  auto alpn_wire = encode_alpn(config.alpn);
  if (!alpn_wire) return Error(std::move(alpn_wire.error()));

  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) return Error("tls: cannot create server context: " + openssl_reason());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_security_level(c, 2);
  SSL_CTX_set_min_proto_version(c, config.min_version);
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Idle connections (tens of thousands per shard) must not pin 16 KB buffers.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  // The chain sent is the configured file's, as is (leaf first, then
  // intermediates): without this OpenSSL tries to build one from the
  // server's (empty) store on every handshake. nginx sets it too.
  SSL_CTX_set_mode(c, SSL_MODE_NO_AUTO_CHAIN);
  SSL_CTX_clear_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE);
  // Resumption is stateless tickets only: nothing per session on the server.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof kSessionIdContext - 1);
  if (auto ok = use_cipher_list(c, config.cipher_list); !ok) return Error(std::move(ok.error()));

  int first_key_type = 0;
  std::vector<ServedCertificate> served;
  auto staples = std::make_unique<OcspStaples>();
  for (const CertificateKeyPair& pair : config.certificates) {
    auto loaded = use_certificate_key_pair(c, pair);
    if (!loaded) return Error(std::move(loaded.error()));
    if (loaded->key_type == first_key_type) {
      return Error("tls: certificates " + config.certificates.front().certificate_chain_path + " and " +
                   pair.certificate_chain_path + " have the same key type; load one ECDSA and one RSA at most");
    }
    first_key_type = loaded->key_type;
    served.push_back(std::move(loaded->served));
    if (loaded->staple) staples->entries.push_back(std::move(*loaded->staple));
  }
  if (!staples->entries.empty()) {
    const int slot = staples_slot();
    OcspStaples* owned = staples.get();
    if (slot < 0 || SSL_CTX_set_ex_data(c, slot, owned) != 1) {
      return Error("tls: cannot install OCSP responses: " + openssl_reason());
    }
    staples.release();  // the context frees it (free_staples_slot)
    SSL_CTX_set_tlsext_status_cb(c, &staple_ocsp);
    SSL_CTX_set_tlsext_status_arg(c, owned);
  }

  if (!alpn_wire->empty()) {
    const int slot = alpn_slot();
    auto* wire = new std::string(std::move(*alpn_wire));
    if (slot < 0 || SSL_CTX_set_ex_data(c, slot, wire) != 1) {
      delete wire;
      return Error("tls: cannot install ALPN protocols: " + openssl_reason());
    }
    SSL_CTX_set_alpn_select_cb(c, &select_alpn, wire);
  }

  capture_traffic_secrets(c);  // established TLS 1.3 sessions move to the RecordLayer
  if (config.ticket_keys != nullptr) {
    SSL_CTX_set_num_tickets(c, 1);
    if (auto ok = TicketKeys::install(config.ticket_keys, c); !ok) return Error(std::move(ok.error()));
  } else {
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 0);
  }
  Context made(ctx.release());
  made.served_ = std::move(served);
  return made;
}

std::expected<Context, std::string> Context::make_client(const ClientContextConfig& config) {
  ErrorQueueScrub scrub;
  auto alpn_wire = encode_alpn(config.alpn);
  if (!alpn_wire) return Error(std::move(alpn_wire.error()));

  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) return Error("tls: cannot create client context: " + openssl_reason());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_security_level(c, 2);
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_clear_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE);
  if (auto ok = use_cipher_list(c, {}); !ok) return Error(std::move(ok.error()));

  if (config.verify_peer) {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    if (config.ca_file.empty()) {
      if (SSL_CTX_set_default_verify_paths(c) != 1) {
        return Error("tls: cannot load the system trust store: " + openssl_reason());
      }
    } else {
      if (auto readable = read_file(config.ca_file, "CA file"); !readable) {
        return Error(std::move(readable.error()));
      }
      if (SSL_CTX_load_verify_file(c, config.ca_file.c_str()) != 1) {
        return Error("tls: CA file " + config.ca_file + " holds no usable certificate: " + openssl_reason());
      }
    }
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  }

  if (!alpn_wire->empty() &&
      SSL_CTX_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(alpn_wire->data()),
                              static_cast<unsigned int>(alpn_wire->size())) != 0) {
    return Error("tls: cannot set ALPN protocols: " + openssl_reason());
  }

  if (config.enable_resumption) {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  } else {
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  }
  return Context(ctx.release());
}

std::vector<std::string> source_files(const std::vector<CertificateKeyPair>& certificates) {
  std::vector<std::string> files;
  for (const CertificateKeyPair& pair : certificates) {
    files.push_back(pair.certificate_chain_path);
    files.push_back(pair.private_key_path);
    if (!pair.ocsp_response_path.empty()) files.push_back(pair.ocsp_response_path);
  }
  return files;
}

std::expected<std::vector<std::string>, std::string> certificate_names(const std::string& certificate_chain_path) {
  ErrorQueueScrub scrub;
  auto chain = load_certificate_chain(certificate_chain_path);
  if (!chain) return Error(std::move(chain.error()));
  X509* leaf = chain->front().get();
  std::vector<std::string> names;
  auto add = [&names](const unsigned char* data, int length) {
    if (data == nullptr || length <= 0) return;
    std::string name(reinterpret_cast<const char*>(data), static_cast<size_t>(length));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    names.push_back(std::move(name));
  };
  auto* alt_names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (alt_names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(alt_names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(alt_names, i);
      if (name->type == GEN_DNS) add(ASN1_STRING_get0_data(name->d.dNSName), ASN1_STRING_length(name->d.dNSName));
    }
    GENERAL_NAMES_free(alt_names);
  }
  if (names.empty()) {
    const X509_NAME* subject = X509_get_subject_name(leaf);
    int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index >= 0) {
      const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
      add(ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn));
    }
  }
  return names;
}

}  // namespace mf::tls
