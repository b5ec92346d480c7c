/* libFuzzer driver for the gateway token verifier, the first thing
 * warden-ws runs on bytes from an unauthenticated browser: arbitrary text
 * as a token, and the text spliced between a genuine token's header and
 * signature (so the shape and header checks pass and the signature check,
 * base64 and JSON decoding see it). Nothing may crash and nothing but a
 * genuine token may verify. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wstoken.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static wd_wstoken_keys *keys;
static char *genuine;

/* True if text verified although its signed part (header.payload) is not
 * the genuine token's: a forgery. (A different signature over the same
 * part is ECDSA's malleability, not a forgery.) */
static bool forged(const char *text)
{
    const char *dot = strrchr(text, '.'), *gdot = strrchr(genuine, '.');
    return !dot || dot - text != gdot - genuine || strncmp(text, genuine, (size_t)(dot - text));
}

static void setup(void)
{
    char *priv = NULL, *pub = NULL;
    wd_wstoken_claims c;
    memset(&c, 0, sizeof c);
    if (wd_wstoken_keygen(&priv, &pub) != WD_OK ||
        wd_wstoken_keys_from_pem(&keys, priv, NULL, 0) != WD_OK)
        abort();
    snprintf(c.sub, sizeof c.sub, "user-1");
    snprintf(c.srv, sizeof c.srv, "server-1");
    snprintf(c.node, sizeof c.node, "node-1");
    snprintf(c.perms[c.nperms++], WD_WSTOKEN_PERM_MAX, "websocket.connect");
    c.iat = (int64_t)time(NULL);
    c.exp = c.iat + 3600;
    if (wd_wstoken_issue(keys, &c, &genuine) != WD_OK)
        abort();
    free(priv);
    free(pub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys)
        setup();
    if (size > WD_WSTOKEN_MAX + 16)
        return 0;
    wd_wstoken_claims c;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    if (wd_wstoken_verify(keys, text, time(NULL), &c) == WD_OK && forged(text))
        abort();

    const char *d1 = strchr(genuine, '.'), *d2 = strrchr(genuine, '.');
    size_t hlen = (size_t)(d1 - genuine) + 1, slen = strlen(d2);
    char *spliced = malloc(hlen + size + slen + 1);
    memcpy(spliced, genuine, hlen);
    memcpy(spliced + hlen, text, size);
    memcpy(spliced + hlen + size, d2, slen + 1);
    if (wd_wstoken_verify(keys, spliced, time(NULL), &c) == WD_OK && forged(spliced))
        abort();
    free(spliced);
    free(text);
    return 0;
}
