#include "CCryptoShim.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

EVP_MAC_CTX *polyad_hmac_sha256_new(const void *key, size_t key_len) {
    static const unsigned char empty_key[1] = {0};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context keeps its own reference
    if (ctx == NULL) return NULL;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    // A NULL key would mean "keep the previous key"; an empty key is a valid HMAC key.
    if (EVP_MAC_init(ctx, key != NULL ? key : empty_key, key_len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int polyad_hmac_compute(const EVP_MAC_CTX *keyed, const void *data, size_t data_len, void *out, size_t out_size) {
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(keyed);
    if (ctx == NULL) return 0;
    size_t out_len = 0;
    int ok = (data_len == 0 || EVP_MAC_update(ctx, data, data_len) == 1)
        && EVP_MAC_final(ctx, out, &out_len, out_size) == 1 && out_len == out_size;
    EVP_MAC_CTX_free(ctx);
    return ok;
}

/// Feeds `len` bytes to EVP_CipherUpdate in pieces that fit its `int` length.
static int cipher_update(EVP_CIPHER_CTX *ctx, unsigned char *out, const unsigned char *in, size_t len) {
    const size_t piece_max = (size_t)INT_MAX & ~(size_t)15;
    while (len > 0) {
        int piece = (int)(len < piece_max ? len : piece_max);
        int written = 0;
        if (EVP_CipherUpdate(ctx, out, &written, in, piece) != 1 || written != piece) return 0;
        in += piece;
        out += piece;
        len -= (size_t)piece;
    }
    return 1;
}

/// Sets up a GCM context for one message: cipher, key, nonce length, nonce, and the additional data.
static EVP_CIPHER_CTX *gcm_begin(const EVP_CIPHER *cipher, int encrypt, const void *key, const void *nonce,
                                 size_t nonce_len, const void *aad, size_t aad_len) {
    if (nonce_len == 0 || nonce_len > INT_MAX || aad_len > INT_MAX) return NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return NULL;
    int aad_written = 0;
    if (EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, encrypt, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)nonce_len, NULL) != 1
        || EVP_CipherInit_ex2(ctx, NULL, key, nonce, encrypt, NULL) != 1
        || (aad_len > 0 && EVP_CipherUpdate(ctx, NULL, &aad_written, aad, (int)aad_len) != 1)) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int polyad_aes_gcm_seal(const EVP_CIPHER *cipher, const void *key, const void *nonce, size_t nonce_len,
                        const void *aad, size_t aad_len, const void *in, size_t in_len, void *out, void *tag) {
    EVP_CIPHER_CTX *ctx = gcm_begin(cipher, 1, key, nonce, nonce_len, aad, aad_len);
    if (ctx == NULL) return 0;
    unsigned char final_block[16];
    int final_len = 0;
    int ok = cipher_update(ctx, out, in, in_len)
        && EVP_EncryptFinal_ex(ctx, final_block, &final_len) == 1 && final_len == 0
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

int polyad_aes_gcm_open(const EVP_CIPHER *cipher, const void *key, const void *nonce, size_t nonce_len,
                        const void *aad, size_t aad_len, const void *in, size_t in_len, void *out, const void *tag) {
    EVP_CIPHER_CTX *ctx = gcm_begin(cipher, 0, key, nonce, nonce_len, aad, aad_len);
    if (ctx == NULL) return -1;
    int result = -1;
    unsigned char tag_copy[16];
    memcpy(tag_copy, tag, sizeof tag_copy);  // EVP_CIPHER_CTX_ctrl takes a non-const pointer
    if (cipher_update(ctx, out, in, in_len)
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag_copy) == 1) {
        unsigned char final_block[16];
        int final_len = 0;
        result = EVP_DecryptFinal_ex(ctx, final_block, &final_len) == 1 ? 1 : 0;
    }
    EVP_CIPHER_CTX_free(ctx);
    if (result != 1 && in_len > 0) OPENSSL_cleanse(out, in_len);  // never hand out unauthenticated plaintext
    if (result == 0) ERR_clear_error();  // a tag mismatch is an expected outcome, not an OpenSSL error
    return result;
}

int polyad_scrypt(const void *pass, size_t pass_len, const void *salt, size_t salt_len, uint64_t n, uint64_t r,
                  uint64_t p, uint64_t max_mem, void *out, size_t out_len) {
    static const char empty[1] = {0};
    // EVP_PBE_scrypt treats a NULL output as "only check the parameters"; empty inputs must not be NULL.
    int ok = EVP_PBE_scrypt(pass != NULL ? pass : empty, pass_len,
                            salt != NULL ? salt : (const void *)empty, salt_len, n, r, p, max_mem,
                            out, out_len) == 1;
    return ok;
}

int polyad_random_bytes(void *out, size_t len) {
    unsigned char *bytes = out;
    while (len > 0) {
        int piece = (int)(len < (size_t)INT_MAX ? len : (size_t)INT_MAX);
        if (RAND_bytes(bytes, piece) != 1) return 0;
        bytes += piece;
        len -= (size_t)piece;
    }
    return 1;
}

int polyad_take_error(char *buf, size_t buf_len) {
    unsigned long code = ERR_get_error();
    if (code == 0) return 0;
    ERR_error_string_n(code, buf, buf_len);
    ERR_clear_error();
    return 1;
}
