/* Server selection for wardenctl's bulk commands (`power`, `backup`,
 * `broadcast`): a filter expression is comma-separated KEY=VALUE terms
 * that must all match (AND):
 *
 *   node=NODE        the node id (or a glob of it)
 *   state=STATE      offline, installing, starting, running, stopping,
 *                    crashed, unknown (an unknown state name is an error)
 *   template=NAME    the template id ("testgame"; a glob)
 *   name=GLOB        the server's display name (fnmatch glob)
 *   id=GLOB          the server id
 *
 * A VALUE may itself hold no comma. An empty expression matches nothing on
 * its own: callers refuse it unless --all was given. Pure, any thread. */
#ifndef WD_FILTER_H
#define WD_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define WD_FILTER_MAX_TERMS 16

typedef enum { WD_FK_NODE, WD_FK_STATE, WD_FK_TEMPLATE, WD_FK_NAME, WD_FK_ID } wd_filter_key;

typedef struct {
    wd_filter_key key;
    char value[256];
} wd_filter_term;

typedef struct {
    wd_filter_term terms[WD_FILTER_MAX_TERMS];
    size_t n;
} wd_filter;

/* What a filter looks at, for one server. Strings may be NULL (= ""). */
typedef struct {
    const char *id, *name, *node, *template_id, *state;
} wd_filter_subject;

/* Parses expr into *f. WD_ERR_INVALID (message names the bad term) on an
 * unknown key, a term without '=', an empty value, a bad state or too many
 * terms. An empty or NULL expr gives an empty filter (n = 0). */
wd_status wd_filter_parse(const char *expr, wd_filter *f);

/* True if every term matches s (an empty filter matches everything: the
 * "refuse an empty selection" rule is the caller's). */
bool wd_filter_match(const wd_filter *f, const wd_filter_subject *s);

#endif
