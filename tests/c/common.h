/*
 * Shared helpers of the C tests: a tiny TAP-style harness, unique ipc:// URLs in
 * a temp dir, and a recorder that callbacks write to and the test waits on
 * (conditions with generous deadlines, never fixed sleeps).
 */
#ifndef GD_TEST_COMMON_H
#define GD_TEST_COMMON_H

#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gopherdiscovery.h>

/* Generous: valgrind makes everything ~30x slower. */
#define DEADLINE_MS 60000

static int g_failed_checks;
static int g_passed, g_failed;
static char g_dir[256];
static int g_url_seq;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            g_failed_checks++;                                                       \
            return;                                                                  \
        }                                                                            \
    } while (0)

/* A call that must return `want`; on a mismatch prints the last error. */
#define CHECK_RC(call, want)                                                          \
    do {                                                                              \
        gd_result rc_ = (call);                                                       \
        if (rc_ != (want)) {                                                          \
            char m_[512];                                                             \
            gd_last_error_message(m_, sizeof m_);                                     \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), expected %d: %s\n", __FILE__, \
                    __LINE__, #call, (int)rc_, gd_strerror(rc_), (int)(want), m_);    \
            g_failed_checks++;                                                        \
            return;                                                                   \
        }                                                                             \
    } while (0)

static inline void run_test(const char *name, void (*fn)(void)) {
    int before = g_failed_checks;
    fn();
    if (g_failed_checks == before) {
        g_passed++;
        printf("ok - %s\n", name);
    } else {
        g_failed++;
        printf("not ok - %s\n", name);
    }
    fflush(stdout);
}

#define RUN(fn) run_test(#fn, fn)

static inline void cleanup_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

static inline int setup(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/gd-c-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

/* Ends the program: TAP-style summary, exit status 1 on any failure. */
static inline int finish(void) {
    cleanup_dir();
    printf("# %d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}

/* A fresh ipc:// URL in the test's temp dir. */
static inline void new_url(char *buf, size_t len, const char *what) {
    snprintf(buf, len, "ipc://%s/%s-%d", g_dir, what, ++g_url_seq);
}

static inline long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* A server on fresh ipc URLs, with timings that tolerate valgrind. */
struct mesh {
    char survey[300], publish[300], snapshot[300];
    gd_server *server;
};

/* Fresh URLs for `m` and the options of its server (before gd_server_start). */
static inline void mesh_options(struct mesh *m, gd_server_options *o) {
    new_url(m->survey, sizeof m->survey, "survey");
    new_url(m->publish, sizeof m->publish, "publish");
    new_url(m->snapshot, sizeof m->snapshot, "snapshot");
    gd_server_options_init(o);
    o->survey = m->survey;
    o->publish = m->publish;
    o->snapshot = m->snapshot;
    /* Joins and closes are seen at once (connection events); a slow run must
     * not evict a live member for missed surveys. */
    o->interval_ms = 500;
    o->deadline_ms = 400;
    o->evict_after = 20;
}

static inline gd_result mesh_start(struct mesh *m) {
    gd_server_options o;
    mesh_options(m, &o);
    return gd_server_start(&o, &m->server);
}

static inline void sub_options(gd_subscriber_options *o, const struct mesh *m) {
    gd_subscriber_options_init(o);
    o->publish = m->publish;
    o->snapshot = m->snapshot;
    /* A loaded machine may delay heartbeats; the tests never expect stale. */
    o->stale_after = 1000;
}

static inline gd_result join_as(const struct mesh *m, const char *name, const gd_subscriber_options *watch,
                                gd_client **out) {
    const char *surveys[1];
    gd_client_options o;
    surveys[0] = m->survey;
    gd_client_options_init(&o);
    o.name = name;
    o.surveys = surveys;
    o.survey_count = 1;
    o.watch = watch;
    return gd_client_join(&o, out);
}

/* What callbacks saw, guarded by a lock; waiters wake on every change. */
struct recorder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char peers[4096]; /* last list, names joined by ',' ("" when empty) */
    int peer_calls;
    char events[16384]; /* one line per event: "kind name reason k=v ...\n" */
    int event_calls;
    int has_list;
    uint32_t last_generation; /* generation of the last event */
};

static inline void rec_init(struct recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static inline void rec_destroy(struct recorder *r) {
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static inline void join_names(char *buf, size_t len, const char *const *names, size_t count) {
    buf[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        if (i) strncat(buf, ",", len - strlen(buf) - 1);
        strncat(buf, names[i], len - strlen(buf) - 1);
    }
}

static inline void rec_peers(void *user, const char *const *peers, size_t count) {
    struct recorder *r = user;
    pthread_mutex_lock(&r->mu);
    join_names(r->peers, sizeof r->peers, peers, count);
    if (peers[count] != NULL) strcpy(r->peers, "!! list not NULL-terminated");
    r->peer_calls++;
    r->has_list = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static inline void rec_event(void *user, const gd_event *e) {
    struct recorder *r = user;
    char line[1024];
    int n = snprintf(line, sizeof line, "%s %s %s", gd_event_kind_str(e->kind), e->name, gd_reason_str(e->reason));
    for (size_t i = 0; i < e->metadata_count && n > 0 && (size_t)n < sizeof line; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, " %s=%s", e->metadata[i].key, e->metadata[i].value);
    pthread_mutex_lock(&r->mu);
    strncat(r->events, line, sizeof r->events - strlen(r->events) - 2);
    strcat(r->events, "\n");
    r->last_generation = e->generation;
    r->event_calls++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

typedef int (*rec_pred)(const struct recorder *r, const char *want);

static inline int saw_peers(const struct recorder *r, const char *want) {
    return r->has_list && strcmp(r->peers, want) == 0;
}

static inline int saw_event(const struct recorder *r, const char *want) {
    return strstr(r->events, want) != NULL;
}

/* Waits (up to DEADLINE_MS) until `pred(r, want)` holds; reports a timeout. */
static inline int rec_wait(struct recorder *r, rec_pred pred, const char *want) {
    long long end = now_ms() + DEADLINE_MS;
    int ok;
    pthread_mutex_lock(&r->mu);
    while (!(ok = pred(r, want)) && now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    if (!ok)
        fprintf(stderr, "  timed out waiting for [%s]; peers [%s], events:\n%s", want, r->peers, r->events);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

#define WAIT_PEERS(r, want) CHECK(rec_wait((r), saw_peers, (want)))
#define WAIT_EVENT(r, want) CHECK(rec_wait((r), saw_event, (want)))

static inline int rec_peer_calls(struct recorder *r) {
    pthread_mutex_lock(&r->mu);
    int n = r->peer_calls;
    pthread_mutex_unlock(&r->mu);
    return n;
}

#endif
