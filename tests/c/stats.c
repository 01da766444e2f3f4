/*
 * A C member that watches, for the cross-language stats test
 * (python/tests/test_stats.py): joins as NAME, waits until its subscriber is
 * live with COUNT members and its client has been surveyed, then prints its
 * subscriber and client statistics as one JSON line (the field names of the C
 * structs) and stays a member until SIGINT or SIGTERM (then exits 0).
 *
 *     stats SURVEY_URL PUBLISH_URL SNAPSHOT_URL NAME COUNT
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <gopherdiscovery.h>

static void pause_10ms(void) {
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
}

static int fail(const char *what) {
    char m[512];
    gd_last_error_message(m, sizeof m);
    fprintf(stderr, "stats: %s: %s\n", what, m);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: stats SURVEY_URL PUBLISH_URL SNAPSHOT_URL NAME COUNT\n");
        return 2;
    }
    const char *surveys[1] = {argv[1]};
    sigset_t stop;
    int sig = 0;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    uint64_t want = (uint64_t)strtoull(argv[5], NULL, 10);
    gd_subscriber_options w;
    gd_client_options o;
    gd_client *c;
    gd_subscriber_options_init(&w);
    w.publish = argv[2];
    w.snapshot = argv[3];
    gd_client_options_init(&o);
    o.name = argv[4];
    o.surveys = surveys;
    o.survey_count = 1;
    o.watch = &w;
    if (gd_client_join(&o, &c) != GD_OK) return fail("gd_client_join");
    gd_subscriber *sub = gd_client_subscriber(c);

    gd_subscriber_statistics s;
    gd_client_statistics cs;
    gd_survey_url_statistics u;
    /* Conditions, not a sleep: the deadline is only how long we give them. */
    for (int i = 0;; i++) {
        s.struct_size = sizeof s;
        cs.struct_size = sizeof cs;
        if (gd_subscriber_stats(sub, &s) != GD_OK) return fail("gd_subscriber_statistics");
        if (gd_client_stats(c, &cs) != GD_OK) return fail("gd_client_statistics");
        if (s.state == GD_STATE_LIVE && s.members == want && cs.surveys_answered >= 1) break;
        if (i > 6000) {
            fprintf(stderr, "stats: timed out: state %s, %" PRIu64 " members\n", gd_state_str(s.state), s.members);
            gd_client_close(c);
            return 1;
        }
        pause_10ms();
    }
    u.struct_size = sizeof u;
    if (gd_client_survey_url_stats(c, 0, &u) != GD_OK) return fail("gd_client_survey_url_stats");
    printf("{\"subscriber\":{\"state\":\"%s\",\"members\":%" PRIu64 ",\"epoch\":%" PRIu64 ",\"seq\":%" PRIu64
           ",\"publish_connections\":%" PRIu64 ",\"snapshot_connections\":%" PRIu64 ",\"publications\":%" PRIu64
           ",\"last_publication_age_ms\":%" PRId64 ",\"resyncs\":%" PRIu64 ",\"dropped\":%" PRIu64 "},",
           gd_state_str(s.state), s.members, s.epoch, s.seq, s.publish_connections, s.snapshot_connections,
           s.publications, s.last_publication_age_ms, s.resyncs, s.dropped);
    printf("\"client\":{\"connections\":%" PRIu64 ",\"surveys_answered\":%" PRIu64 ",\"announces_sent\":%" PRIu64
           ",\"last_survey_age_ms\":%" PRId64 ",\"survey_url_count\":%zu,",
           cs.connections, cs.surveys_answered, cs.announces_sent, cs.last_survey_age_ms, cs.survey_url_count);
    /* URLs here are ipc:// paths in a temp dir: no character needs escaping. */
    printf("\"survey_urls\":[{\"url\":\"%s\",\"connected\":%s,\"surveys_answered\":%" PRIu64
           ",\"announces_sent\":%" PRIu64 ",\"last_survey_age_ms\":%" PRId64 "}]}}\n",
           u.url, u.connected ? "true" : "false", u.surveys_answered, u.announces_sent, u.last_survey_age_ms);
    fflush(stdout);
    sigwait(&stop, &sig);
    return gd_client_close(c) == GD_OK ? 0 : 1;
}
