/* `wardenctl bus tail SUBJECT`: watch the bus, one decoded line per
 * message (pbjson.h does the decoding and printing).
 *
 * Runs on main's thread until `count` messages were printed (0 = no
 * limit), Ctrl-C / SIGTERM (wd_ctl_interrupted), or the connection closes.
 * Needs wd_ctl_bus connected. Returns the exit code. */
#ifndef WD_TAIL_H
#define WD_TAIL_H

int wd_tail_run(const char *subject, long count);

#endif
