/*
 * ldx-sleeper: a named process for the ldx test guest.
 *
 * Started as /bin/<name> <name> <nonce>; exec through a link called <name>
 * already sets comm, and prctl(PR_SET_NAME) makes sure of it. It keeps a
 * recognisable string in its own anonymous memory ("ldx-proc-marker: <name>
 * <nonce>") so tests can look for user pages of a known task, then sleeps
 * forever without using CPU (TCG is slow enough).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

char *volatile ldx_keep;

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : argv[0];
	const char *slash = strrchr(name, '/');
	if (slash)
		name = slash + 1;
	prctl(PR_SET_NAME, name, 0, 0, 0);
	ldx_keep = malloc(4096);
	if (ldx_keep)
		snprintf(ldx_keep, 4096, "ldx-proc-marker: %s %s", name, argc > 2 ? argv[2] : "");
	for (;;)
		pause();
}
