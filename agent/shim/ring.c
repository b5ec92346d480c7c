/* The shim's console log: line splitting and the byte-bounded line ring (see
 * ring.h).
 *
 * Line bytes live in one circular byte buffer of max_bytes; a circular index
 * of 8-byte entries (offset, length | flags << 24) records where each line
 * starts. Because a line is charged its length plus the entry size, the text
 * in use never exceeds the buffer, so a new line can always be written after
 * the newest one once enough old lines are evicted. A line may wrap around
 * the end of the buffer; wd_ring_line() copies it out in two pieces. */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

#include "shim_proto.h"

typedef struct {
    uint32_t off;       /* start in data[] */
    uint32_t len_flags; /* length in the low 24 bits, flags in the high 8 */
} entry;

struct wd_ring {
    uint8_t *data;
    size_t cap;  /* == max_bytes */
    size_t head; /* where the next line's bytes go */
    size_t cost; /* sum of (len + WD_RING_LINE_COST) of held lines */

    entry *ents;
    size_t ecap, efirst, ecount;
    uint64_t oldest_seq;

    size_t max_line;
    uint8_t *pend; /* the line being assembled; room for max_line + 2 */
    size_t plen;
};

wd_status wd_ring_create(wd_ring **out, size_t max_bytes, size_t max_line)
{
    wd_status st = WD_OK;
    wd_ring *r = NULL;
    if (max_line < 1 || max_line > WD_RING_MAX_LINE)
        return WD_ERR(WD_ERR_INVALID, "max line %zu out of range 1..%u", max_line,
                      WD_RING_MAX_LINE);
    if (max_bytes < 2 * (max_line + 2 + WD_RING_LINE_COST) || max_bytes > UINT32_MAX)
        return WD_ERR(WD_ERR_INVALID, "ring of %zu bytes cannot hold two %zu-byte lines",
                      max_bytes, max_line);
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        st = WD_ERR(WD_ERR_NOMEM, "out of memory for the ring");
        goto out;
    }
    r->cap = max_bytes;
    r->max_line = max_line;
    r->oldest_seq = 1;
    r->data = malloc(max_bytes);
    r->pend = malloc(max_line + 2);
    if (r->data == NULL || r->pend == NULL) {
        st = WD_ERR(WD_ERR_NOMEM, "out of memory for a %zu-byte ring", max_bytes);
        goto out;
    }
    *out = r;
    r = NULL;
out:
    wd_ring_destroy(&r);
    return st;
}

void wd_ring_destroy(wd_ring **p)
{
    if (p == NULL || *p == NULL)
        return;
    wd_ring *r = *p;
    free(r->data);
    free(r->ents);
    free(r->pend);
    free(r);
    *p = NULL;
}

uint64_t wd_ring_oldest(const wd_ring *r)
{
    return r->oldest_seq;
}

uint64_t wd_ring_next(const wd_ring *r)
{
    return r->oldest_seq + r->ecount;
}

static const entry *entry_at(const wd_ring *r, size_t i)
{
    return &r->ents[(r->efirst + i) % r->ecap];
}

static void evict_oldest(wd_ring *r)
{
    const entry *e = entry_at(r, 0);
    r->cost -= (e->len_flags & 0xffffffu) + WD_RING_LINE_COST;
    r->efirst = (r->efirst + 1) % r->ecap;
    r->ecount--;
    r->oldest_seq++;
}

/* Grows the index; returns false when memory is short (the caller then
 * evicts instead, so the ring degrades but never fails). */
static bool grow_index(wd_ring *r)
{
    size_t ncap = r->ecap ? r->ecap * 2 : 1024;
    entry *n = malloc(ncap * sizeof *n);
    if (n == NULL)
        return false;
    for (size_t i = 0; i < r->ecount; i++)
        n[i] = *entry_at(r, i);
    free(r->ents);
    r->ents = n;
    r->ecap = ncap;
    r->efirst = 0;
    return true;
}

static void push_line(wd_ring *r, const uint8_t *p, size_t len, uint8_t flags)
{
    size_t need = len + WD_RING_LINE_COST;
    while (r->ecount > 0 && r->cost + need > r->cap)
        evict_oldest(r);
    if (r->ecount == r->ecap && !grow_index(r)) {
        if (r->ecount == 0)
            return; /* no memory at all: the line is lost, seq is not taken */
        evict_oldest(r);
    }
    entry *e = &r->ents[(r->efirst + r->ecount) % r->ecap];
    e->off = (uint32_t)r->head;
    e->len_flags = (uint32_t)len | ((uint32_t)flags << 24);
    size_t first = r->cap - r->head;
    if (first >= len) {
        memcpy(r->data + r->head, p, len);
    } else {
        memcpy(r->data + r->head, p, first);
        memcpy(r->data, p + first, len - first);
    }
    r->head = (r->head + len) % r->cap;
    r->cost += need;
    r->ecount++;
}

void wd_ring_line(const wd_ring *r, uint64_t seq, uint32_t *len, uint8_t *flags, uint8_t *dst)
{
    const entry *e = entry_at(r, (size_t)(seq - r->oldest_seq));
    uint32_t n = e->len_flags & 0xffffffu;
    *len = n;
    if (flags)
        *flags = (uint8_t)(e->len_flags >> 24);
    if (dst == NULL)
        return;
    size_t first = r->cap - e->off;
    if (first >= n) {
        memcpy(dst, r->data + e->off, n);
    } else {
        memcpy(dst, r->data + e->off, first);
        memcpy(dst + first, r->data, n - first);
    }
}

/* Where to cut a line that is too long: at max_line, moved back to the start
 * of a UTF-8 sequence that would straddle the cut, so that each piece stays
 * valid text when the game writes UTF-8. */
static size_t cut_point(const wd_ring *r)
{
    size_t k = r->max_line;
    if ((r->pend[k] & 0xc0) != 0x80)
        return k;
    size_t j = k;
    while (j > 0 && k - j < 3 && (r->pend[j] & 0xc0) == 0x80)
        j--;
    uint8_t lead = r->pend[j];
    size_t seqlen = (lead & 0xe0) == 0xc0   ? 2
                    : (lead & 0xf0) == 0xe0 ? 3
                    : (lead & 0xf8) == 0xf0 ? 4
                                            : 0;
    if (j > 0 && seqlen > 0 && j + seqlen > k)
        return j;
    return k;
}

/* Carriage returns at the end of the pending bytes. ONLCR makes the pty
 * turn a game's "\r\n" into "\r\r\n", so more than one may precede '\n'. */
static size_t trailing_crs(const wd_ring *r)
{
    size_t k = 0;
    while (k < r->plen && r->pend[r->plen - 1 - k] == '\r')
        k++;
    return k;
}

/* A line longer than max_line is cut as soon as that is certain: when it is
 * longer even without the carriage returns that may belong to its end, or
 * when the pending buffer (max_line + 2) is full. */
static void cut_while_needed(wd_ring *r)
{
    while (r->plen - trailing_crs(r) > r->max_line || r->plen >= r->max_line + 2) {
        size_t k = cut_point(r);
        push_line(r, r->pend, k, WD_SHIM_LINE_CUT);
        memmove(r->pend, r->pend + k, r->plen - k);
        r->plen -= k;
    }
}

static void end_line(wd_ring *r)
{
    push_line(r, r->pend, r->plen - trailing_crs(r), 0);
    r->plen = 0;
}

void wd_ring_feed(wd_ring *r, const uint8_t *data, size_t len)
{
    while (len > 0) {
        const uint8_t *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        size_t done = 0;
        while (done < take) {
            size_t room = r->max_line + 2 - r->plen;
            size_t c = take - done < room ? take - done : room;
            memcpy(r->pend + r->plen, data + done, c);
            r->plen += c;
            done += c;
            cut_while_needed(r);
        }
        if (nl == NULL)
            return;
        end_line(r);
        data += take + 1;
        len -= take + 1;
    }
}

bool wd_ring_partial_pending(const wd_ring *r)
{
    return r->plen > trailing_crs(r);
}

void wd_ring_flush_partial(wd_ring *r, bool final)
{
    size_t crs = trailing_crs(r);
    if (r->plen > crs)
        push_line(r, r->pend, r->plen - crs, WD_SHIM_LINE_PARTIAL);
    if (final) {
        r->plen = 0;
        return;
    }
    /* Keep the carriage returns: their '\n' is probably on its way. */
    memmove(r->pend, r->pend + r->plen - crs, crs);
    r->plen = crs;
}
