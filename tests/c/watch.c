/*
 * A C subscriber for the process tests: prints one line per change until
 * SIGINT or SIGTERM.
 *
 *     watch PUBLISH_URL SNAPSHOT_URL
 *
 *     peers: NAME NAME ...            (the full sorted list; "peers: -" when empty)
 *     event KIND NAME REASON [K=V]... (joined/left/updated; none/closed/timeout/restarted)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include <gopherdiscovery.h>

static void on_peers(void *user, const char *const *peers, size_t count) {
    (void)user;
    printf("peers:");
    for (const char *const *p = peers; *p; p++) printf(" %s", *p);
    printf("%s\n", count ? "" : " -");
    fflush(stdout);
}

static void on_event(void *user, const gd_event *e) {
    (void)user;
    printf("event %s %s %s", gd_event_kind_str(e->kind), e->name, gd_reason_str(e->reason));
    for (size_t i = 0; i < e->metadata_count; i++) printf(" %s=%s", e->metadata[i].key, e->metadata[i].value);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    sigset_t stop;
    gd_subscriber_options o;
    gd_subscriber *sub;
    int sig = 0;
    char msg[256];

    if (argc != 3) {
        fprintf(stderr, "usage: %s PUBLISH_URL SNAPSHOT_URL\n", argv[0]);
        return 2;
    }
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    gd_subscriber_options_init(&o);
    o.publish = argv[1];
    o.snapshot = argv[2];
    o.on_peers = on_peers;
    o.on_event = on_event;
    if (gd_subscriber_open(&o, &sub) != GD_OK) {
        gd_last_error_message(msg, sizeof msg);
        fprintf(stderr, "watch: %s\n", msg);
        return 1;
    }
    sigwait(&stop, &sig);
    return gd_subscriber_close(sub) == GD_OK ? 0 : 1;
}
