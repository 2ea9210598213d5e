/* Poly1305 one-time authenticator (RFC 8439 §2.5), 64-bit limbs with unsigned __int128. */
#ifndef CAIRN_POLY1305_H
#define CAIRN_POLY1305_H

#include <stddef.h>
#include <stdint.h>

/* tag = Poly1305(key = r || s, msg[0..len)); r is clamped here. tag may alias neither input. */
void cairn_poly1305(uint8_t tag[16], const uint8_t key[32], const uint8_t *msg, size_t len);

#endif
