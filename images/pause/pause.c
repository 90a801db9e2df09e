/*
 * pause: the owner process of a stackctl namespace group.
 *
 * The owner container of a group exists only to hold the group's network
 * and IPC namespaces (and its published ports) so that members can join them
 * with --net/--ipc container:<owner>. Like the Kubernetes pause container it
 * runs as PID 1, sleeps in pause() forever, reaps any zombie re-parented to it,
 * and exits 0 promptly on SIGINT or SIGTERM so `docker stop` is instant.
 *
 * Build: gcc -static -Os -o pause pause.c && strip pause
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
		puts("stackctl pause 1.0");
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "pause: warning: not running as PID 1\n");

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_term;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return 1;

	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		return 2;

	for (;;)
		pause();
	/* not reached */
	return 42;
}
