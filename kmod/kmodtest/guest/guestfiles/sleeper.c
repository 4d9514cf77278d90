/*
 * ldx-sleeper: a named process for the ldx test guest.
 *
 * Started as /bin/<name> <name> <nonce>; exec through a link called <name>
 * already sets comm, and prctl(PR_SET_NAME) makes sure of it. It keeps a
 * recognisable string in its own anonymous memory ("ldx-proc-marker: <name>
 * <nonce>") so tests can look for user pages of a known task, then sleeps
 * forever without using CPU (TCG is slow enough).
 *
 * ldx-worker also starts two threads, ldx-worker-t1 and ldx-worker-t2, so
 * that task-list walks (ldx ps) meet a thread group on a real kernel.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>

char *volatile ldx_keep;

static void *thread_main(void *arg)
{
	prctl(PR_SET_NAME, (const char *)arg, 0, 0, 0);
	for (;;)
		pause();
	return NULL;
}

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
	if (strcmp(name, "ldx-worker") == 0) {
		static const char *threads[] = {"ldx-worker-t1", "ldx-worker-t2"};
		for (int i = 0; i < 2; i++) {
			pthread_t t;
			pthread_create(&t, NULL, thread_main, (void *)threads[i]);
		}
	}
	for (;;)
		pause();
}
