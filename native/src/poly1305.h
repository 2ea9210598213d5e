/* Poly1305 one-time authenticator (RFC 8439 §2.5): OpenSSL's for long messages, else 64-bit limbs. */
#ifndef CAIRN_POLY1305_H
#define CAIRN_POLY1305_H

#include <stddef.h>
#include <stdint.h>

/* tag = Poly1305(key = r || s, msg[0..len)); r is clamped here. tag may alias neither input. */
void cairn_poly1305(uint8_t tag[16], const uint8_t key[32], const uint8_t *msg, size_t len);

/* 1 when long messages go to OpenSSL's Poly1305 (fetched and self-tested on first use), else 0. */
int cairn_poly1305_uses_openssl(void);

#endif
