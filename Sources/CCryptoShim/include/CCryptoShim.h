// CCryptoShim: the OpenSSL 3.0 libcrypto calls PolyadCrypto uses, plus thin wrappers where a direct call from
// Swift would be awkward (OSSL_PARAM arrays, `int` lengths, `const char *` / `unsigned char *` that would force
// Swift to rebind raw buffers). Wrappers take `void *` + `size_t` so Swift passes raw buffers as they are.
// On failure a wrapper leaves OpenSSL's reason on the per-thread error queue; take it with `polyad_take_error`.
#ifndef POLYAD_CCRYPTOSHIM_H
#define POLYAD_CCRYPTOSHIM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/// Returns an HMAC context keyed with `key` for SHA-256, ready for `polyad_hmac_compute`; NULL on failure.
/// Why: keying an EVP_MAC needs an OSSL_PARAM array naming the digest, which is clumsy to build from Swift.
/// The returned context is a template: it is only read (duplicated) afterwards, so threads may share it.
EVP_MAC_CTX *polyad_hmac_sha256_new(const void *key, size_t key_len);

/// Computes the MAC of `data` with a duplicate of the keyed template `keyed` into `out` (32 bytes for SHA-256).
/// Returns 1 on success, 0 on failure. Why: one call per message (dup, update, final, free) with `void *` +
/// `size_t`, and `keyed` stays untouched, so concurrent callers never share mutable state.
int polyad_hmac_compute(const EVP_MAC_CTX *keyed, const void *data, size_t data_len, void *out, size_t out_size);

/// AES-GCM encryption of `in` into `out` (same length) and the 16-byte tag into `tag`. `cipher` is a fetched
/// AES-GCM cipher matching the key size, `nonce` is 12 bytes. Returns 1 on success, 0 on failure.
/// Why: EVP_EncryptUpdate takes `int` lengths (this loops for larger inputs) and the tag needs EVP ctrl calls;
/// a fresh context per call keeps concurrent calls independent.
int polyad_aes_gcm_seal(const EVP_CIPHER *cipher, const void *key, const void *nonce, size_t nonce_len,
                        const void *aad, size_t aad_len, const void *in, size_t in_len, void *out, void *tag);

/// AES-GCM decryption of `in` into `out` (same length), checking the 16-byte `tag`.
/// Returns 1 if authentic, 0 if the tag does not match (then `out` is zeroed), -1 on other failures.
/// Why: as for `polyad_aes_gcm_seal`, plus the tag check and wiping unauthenticated plaintext in one place.
int polyad_aes_gcm_open(const EVP_CIPHER *cipher, const void *key, const void *nonce, size_t nonce_len,
                        const void *aad, size_t aad_len, const void *in, size_t in_len, void *out, const void *tag);

/// scrypt (RFC 7914) via EVP_PBE_scrypt; returns 1 on success, 0 on failure.
/// Why: `void *` instead of `const char *` / `unsigned char *`, so Swift passes byte arrays without rebinding.
int polyad_scrypt(const void *pass, size_t pass_len, const void *salt, size_t salt_len, uint64_t n, uint64_t r,
                  uint64_t p, uint64_t max_mem, void *out, size_t out_len);

/// Fills `out` with `len` bytes from OpenSSL's CSPRNG; returns 1 on success. Why: RAND_bytes takes an `int`
/// length and `unsigned char *`; this takes `void *` + `size_t` and loops for large requests.
int polyad_random_bytes(void *out, size_t len);

/// Writes the oldest error on this thread's OpenSSL error queue as text into `buf` and clears the queue;
/// returns 0 if the queue was empty. Why: draining and formatting the queue is simpler in C.
int polyad_take_error(char *buf, size_t buf_len);

#endif
