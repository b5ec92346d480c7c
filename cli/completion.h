/* `wardenctl completion bash|zsh`: prints a completion script for the
 * shell: commands, verbs, flags, and server ids, which the script asks
 * for with `wardenctl servers --ids` (bus or API, whatever the typed
 * options and WARDEN_* variables point at) when an id is expected.
 *
 *   source <(wardenctl completion bash)      # or put it in
 *   wardenctl completion bash > /etc/bash_completion.d/wardenctl
 *
 * Returns the exit code (2 for an unknown shell). */
#ifndef WD_COMPLETION_H
#define WD_COMPLETION_H

int wd_completion_print(const char *shell);

#endif
