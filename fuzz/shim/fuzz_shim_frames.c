/* libFuzzer driver for the agent's side of the shim protocol
 * (agent/shim_client.c): arbitrary bytes pushed into a frame reader in
 * arbitrary pieces, every frame decoded as what its type says. Nothing may
 * crash, read out of bounds or leak; a LINES iterator must never yield more
 * lines than its header counts. */
#include <stdint.h>
#include <stdlib.h>

#include "shim_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wd_shim_reader *r = NULL;
    if (wd_shim_reader_create(&r) != WD_OK)
        return 0;
    size_t pos = 0;
    while (pos < size) {
        /* The first byte of each piece says how long the piece is. */
        size_t piece = 1 + data[pos] % 64;
        pos++;
        if (piece > size - pos)
            piece = size - pos;
        if (wd_shim_reader_push(r, data + pos, piece) == WD_ERR_PROTO)
            break;
        pos += piece;
        wd_shim_frame f;
        wd_status st;
        while ((st = wd_shim_reader_next(r, &f)) == WD_OK) {
            wd_shim_hello h;
            wd_shim_exit e;
            wd_shim_lines it;
            wd_shim_line line;
            switch (f.type) {
            case WD_SHIM_HELLO:
                wd_shim_decode_hello(&f, &h);
                break;
            case WD_SHIM_EXIT:
                wd_shim_decode_exit(&f, &e);
                break;
            case WD_SHIM_LINES:
                if (wd_shim_lines_begin(&f, &it) == WD_OK) {
                    uint32_t n = 0;
                    while (wd_shim_lines_next(&it, &line))
                        if (++n > it.count)
                            abort();
                }
                break;
            default:
                break;
            }
        }
        if (st == WD_ERR_PROTO)
            break;
    }
    wd_shim_reader_destroy(&r);
    return 0;
}
