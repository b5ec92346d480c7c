/* Protobuf messages as JSON, for humans watching the bus (`wardenctl bus
 * tail`).
 *
 * The printer walks the protobuf-c descriptor, so it knows every message of
 * proto/warden/v1 without per-type code: scalar fields as JSON numbers and
 * booleans, enums by name (the number when unknown), strings escaped (bytes
 * that are not UTF-8 become U+FFFD), bytes as base64, nested and repeated
 * messages recursively, map fields as JSON objects. As in proto3's JSON
 * mapping, fields at their default value are left out; field names are the
 * .proto names.
 *
 * The subject table maps a bus subject to the message type its publisher
 * sends there (docs/bus.md). Replies (inboxes) cannot be typed from their
 * subject: they print raw, as size plus a base64 prefix.
 *
 * Payloads are untrusted: anything that does not decode prints raw; nothing
 * here trusts a length or a nesting depth it did not check. Pure functions,
 * any thread. */
#ifndef WD_PBJSON_H
#define WD_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes s[0..len) as a JSON string literal: quotes, backslashes and
 * control characters escaped, invalid UTF-8 replaced by \ufffd. */
void wd_pbjson_str(FILE *f, const char *s, size_t len);

/* Writes m as one JSON object (no newline). */
void wd_pbjson_message(FILE *f, const ProtobufCMessage *m);

/* The message type published on subject, or NULL when unknown (replies,
 * foreign subjects). Request subjects are typed by their op
 * (warden.agent.<node>.server.<server>.power → PowerRequest). */
const ProtobufCMessageDescriptor *wd_pbjson_subject_type(const char *subject);

/* Every descriptor the subject table can return, NULL-terminated (for
 * tests and fuzzers). */
extern const ProtobufCMessageDescriptor *const wd_pbjson_known_types[];

/* Prints one bus message as one line:
 *   text: "<time> <subject> <Type> {json}" or "<time> <subject> raw {size, base64 prefix}"
 *   json: {"time":..,"subject":..,"type":..,"size":..,"trace":..,"message":{..}} or ,"raw":{..}
 * time_unix_ms is the receive time; trace may be NULL. Returns true when
 * the payload decoded as the subject's type. */
bool wd_pbjson_print_msg(FILE *f, const char *subject, const void *data, size_t len,
                         int64_t time_unix_ms, const char *trace, bool json);

#endif
