#include "common/tls/tls_ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/base/log.h"

namespace mf {
namespace {

// Fetched once: an implicit EVP_aes_256_cbc() would be looked up in the
// provider store on every ticket.
const EVP_CIPHER* ticket_cipher() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher;
}

// Holds a std::shared_ptr<TicketKeys>* owned by the SSL_CTX, so the keys live
// exactly as long as the last SSL that can still call the ticket callback.
void free_keys_slot(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::shared_ptr<TicketKeys>*>(ptr);
}

int keys_slot() {
  static const int slot = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_keys_slot);
  return slot;
}

}  // namespace

struct TicketCallback {
  // OpenSSL contract: when sealing return 1 (or <0 on error); when opening
  // return 0 for an unknown key (full handshake), 1 to accept, 2 to accept and
  // issue a fresh ticket under the current key, <0 on error.
  static int run(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher_ctx,
                 EVP_MAC_CTX* mac_ctx, int seal) {
    const auto* holder =
        static_cast<const std::shared_ptr<TicketKeys>*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keys_slot()));
    const EVP_CIPHER* cipher = ticket_cipher();
    if (holder == nullptr || cipher == nullptr) return seal ? -1 : 0;
    const TicketKeys::KeySet* set = (*holder)->live_.load(std::memory_order_acquire);

    if (seal) {
      const TicketKeys::Key& key = set->current;
      std::memcpy(key_name, key.name.data(), key.name.size());
      if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1) return -1;
      if (EVP_EncryptInit_ex(cipher_ctx, cipher, nullptr, key.aes_key.data(), iv) != 1) return -1;
      return use_mac_key(mac_ctx, key) ? 1 : -1;
    }

    // TLS 1.3 clients spend a ticket on use (RFC 8446 C.4), so every TLS 1.3
    // resumption must hand out a fresh one; OpenSSL only does so on renewal.
    int accepted = SSL_version(ssl) >= TLS1_3_VERSION ? 2 : 1;
    const TicketKeys::Key* key = nullptr;
    if (std::memcmp(key_name, set->current.name.data(), set->current.name.size()) == 0) {
      key = &set->current;
    } else if (set->has_previous &&
               std::memcmp(key_name, set->previous.name.data(), set->previous.name.size()) == 0) {
      key = &set->previous;
      accepted = 2;
    } else {
      return 0;
    }
    if (EVP_DecryptInit_ex(cipher_ctx, cipher, nullptr, key->aes_key.data(), iv) != 1) return -1;
    return use_mac_key(mac_ctx, *key) ? accepted : -1;
  }

  static bool use_mac_key(EVP_MAC_CTX* mac_ctx, const TicketKeys::Key& key) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<uint8_t*>(key.hmac_key.data()),
                                          key.hmac_key.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac_ctx, params) == 1;
  }
};

std::expected<TicketKeys::Key, std::string> TicketKeys::random_key() {
  Key key;
  if (RAND_bytes(key.name.data(), key.name.size()) != 1 ||
      RAND_bytes(key.aes_key.data(), key.aes_key.size()) != 1 ||
      RAND_bytes(key.hmac_key.data(), key.hmac_key.size()) != 1) {
    ERR_clear_error();
    return std::unexpected("tls: cannot generate session ticket keys: random generator failed");
  }
  return key;
}

std::expected<std::shared_ptr<TicketKeys>, std::string> TicketKeys::generate() {
  if (ticket_cipher() == nullptr) {
    ERR_clear_error();
    return std::unexpected("tls: AES-256-CBC is unavailable for session tickets");
  }
  auto key = random_key();
  if (!key) return std::unexpected(std::move(key.error()));
  std::shared_ptr<TicketKeys> keys(new TicketKeys());
  keys->published_.push_back(std::make_unique<KeySet>(KeySet{*key, {}, false}));
  OPENSSL_cleanse(&*key, sizeof *key);
  keys->live_.store(keys->published_.back().get(), std::memory_order_release);
  return keys;
}

std::expected<void, std::string> TicketKeys::rotate() {
  auto key = random_key();
  if (!key) return std::unexpected(std::move(key.error()));
  std::lock_guard lock(rotate_mutex_);
  const KeySet* old = live_.load(std::memory_order_relaxed);
  published_.push_back(std::make_unique<KeySet>(KeySet{*key, old->current, true}));
  OPENSSL_cleanse(&*key, sizeof *key);
  live_.store(published_.back().get(), std::memory_order_release);
  // The live set and the one it replaced stay; everything older is erased.
  for (; erased_ + 2 < published_.size(); ++erased_) OPENSSL_cleanse(published_[erased_].get(), sizeof(KeySet));
  return {};
}

TicketKeys::~TicketKeys() {
  for (; erased_ < published_.size(); ++erased_) OPENSSL_cleanse(published_[erased_].get(), sizeof(KeySet));
}

std::vector<TicketKeys::KeyName> TicketKeys::key_names_in_memory() {
  std::lock_guard lock(rotate_mutex_);
  std::vector<KeyName> names;
  auto add = [&names](const KeyName& name) {
    if (name != KeyName{} && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  };
  for (size_t i = published_.size(); i-- > 0;) {
    add(published_[i]->current.name);
    if (published_[i]->has_previous) add(published_[i]->previous.name);
  }
  return names;
}

bool TicketKeyRotation::tick(uint64_t now_ms, uint32_t every_s) {
  if (every_s == 0 || now_ms - last_rotation_ms_ < uint64_t{every_s} * 1000) return false;
  last_rotation_ms_ = now_ms;
  // Tickets sealed under the previous key still resume (one key back).
  if (auto rotated = keys_->rotate(); !rotated) {
    MF_LOG_WARN("tls: session ticket key rotation failed: {}", rotated.error());
    return false;
  }
  MF_LOG_INFO("tls: session ticket key rotated");
  return true;
}

TicketKeys::KeyName TicketKeys::current_key_name() const {
  return live_.load(std::memory_order_acquire)->current.name;
}

std::expected<void, std::string> TicketKeys::install(std::shared_ptr<TicketKeys> keys, SSL_CTX* ctx) {
  const int slot = keys_slot();
  if (slot < 0) {
    ERR_clear_error();
    return std::unexpected("tls: cannot allocate an SSL_CTX slot for session ticket keys");
  }
  auto* holder = new std::shared_ptr<TicketKeys>(std::move(keys));
  auto* replaced = static_cast<std::shared_ptr<TicketKeys>*>(SSL_CTX_get_ex_data(ctx, slot));
  if (SSL_CTX_set_ex_data(ctx, slot, holder) != 1) {
    delete holder;
    ERR_clear_error();
    return std::unexpected("tls: cannot install session ticket keys");
  }
  delete replaced;
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &TicketCallback::run);
  return {};
}

}  // namespace mf
