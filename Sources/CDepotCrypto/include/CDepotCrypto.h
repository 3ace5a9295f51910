#ifndef CDEPOT_CRYPTO_H
#define CDEPOT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/// HMAC-SHA256 keyed once: the SHA-256 states after the inner and outer padded key blocks.
typedef struct {
    uint32_t inner[8];
    uint32_t outer[8];
} depot_hmac_sha256_key;

/// Prepares `key` for `depot_hmac_sha256` (keys longer than 64 bytes are hashed first, RFC 2104).
void depot_hmac_sha256_init(depot_hmac_sha256_key *key, const uint8_t *secret, size_t length);

/// HMAC-SHA256 of `message` under a prepared key; writes 32 bytes to `out`.
void depot_hmac_sha256(const depot_hmac_sha256_key *key, const uint8_t *message, size_t length, uint8_t out[32]);

/// SHA-256 of `data` (used for long keys, and by the tests); writes 32 bytes to `out`.
void depot_sha256(const uint8_t *data, size_t length, uint8_t out[32]);

/// 1 when the SHA extensions (SHA-NI) are used, 0 for the portable code.
int depot_sha256_accelerated(void);

/// Chooses the portable code (0) or the SHA extensions when the CPU has them (1). For tests, which
/// check both against another implementation.
void depot_sha256_set_accelerated(int enabled);

#endif
