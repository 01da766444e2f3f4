/*
 * Read-only calls on one watching client from several threads at once, while
 * its callbacks run (tests/c/run.sh builds this with ThreadSanitizer, and with
 * AddressSanitizer where TSan cannot run). The header lets every call but a
 * gd_*_close run on a shared handle from any thread; gd_client_subscriber once
 * formed a `&mut` on the client (undefined behaviour under concurrent calls).
 *
 * READERS threads each loop over gd_client_subscriber (must return the same
 * non-NULL pointer every time), gd_subscriber_peers, gd_subscriber_state and
 * gd_subscriber_position; one of them also changes the client's metadata, so
 * `updated` events keep the callbacks busy. The callbacks, on the subscriber's
 * thread, make the same calls. Meanwhile a second member joins; every reader
 * must see it in the peer list before its deadline.
 *
 *     test_concurrent
 */
#include "common.h"

#define READERS 4
/* Each reader makes at least this many rounds, and goes on until it has seen
 * the full list (or its deadline passes). */
#define MIN_ROUNDS 300

/* What the callbacks see, next to the shared recorder. */
struct watch_ctx {
    pthread_mutex_t mu;
    gd_client *client;
    gd_subscriber *expect;
    int calls, mismatches, errors;
    struct recorder rec;
};

static void ctx_check(struct watch_ctx *w) {
    gd_client *client;
    gd_subscriber *expect, *got;
    gd_peer_list *list = NULL;
    int bad = 0, err = 0;
    pthread_mutex_lock(&w->mu);
    client = w->client;
    expect = w->expect;
    pthread_mutex_unlock(&w->mu);
    got = gd_client_subscriber(client);
    if (got == NULL || got != expect) bad = 1;
    if (gd_subscriber_peers(got, &list) != GD_OK || list->names[list->count] != NULL) err = 1;
    gd_peer_list_free(list);
    pthread_mutex_lock(&w->mu);
    w->calls++;
    w->mismatches += bad;
    w->errors += err;
    pthread_mutex_unlock(&w->mu);
}

static void on_peers(void *user, const char *const *peers, size_t count) {
    struct watch_ctx *w = user;
    ctx_check(w);
    rec_peers(&w->rec, peers, count);
}

static void on_event(void *user, const gd_event *e) {
    struct watch_ctx *w = user;
    ctx_check(w);
    rec_event(&w->rec, e);
}

struct reader {
    pthread_t thread;
    int index;
    gd_client *client;   /* written before pthread_create */
    gd_subscriber *expect;
    const char *want;    /* the full list, names joined by ',' */
    /* Results, read after pthread_join. */
    long rounds;
    int mismatches, errors, saw_want, updates;
    char last[512];
};

static int list_is(const gd_peer_list *list, const char *want) {
    char got[512];
    join_names(got, sizeof got, list->names, list->count);
    return strcmp(got, want) == 0;
}

static void *reader_main(void *arg) {
    struct reader *r = arg;
    long long end = now_ms() + DEADLINE_MS;
    while (now_ms() < end && !(r->saw_want && r->rounds >= MIN_ROUNDS)) {
        gd_subscriber *s = gd_client_subscriber(r->client);
        gd_peer_list *list = NULL;
        gd_state st;
        uint64_t epoch, seq;
        if (s == NULL || s != r->expect) r->mismatches++;
        if (gd_client_subscriber(NULL) != NULL) r->mismatches++;
        if (gd_subscriber_peers(s, &list) != GD_OK) {
            r->errors++;
        } else {
            if (list->names[list->count] != NULL) r->errors++;
            if (list_is(list, r->want)) r->saw_want = 1;
            join_names(r->last, sizeof r->last, list->names, list->count);
            gd_peer_list_free(list);
        }
        if (gd_subscriber_state(s, &st) != GD_OK || st < GD_STATE_SYNCING || st > GD_STATE_STALE) r->errors++;
        if (gd_subscriber_position(s, &epoch, &seq) != GD_OK) r->errors++;
        /* Reader 0 keeps `updated` events (and so callbacks) coming. */
        if (r->index == 0 && r->rounds % 50 == 0 && r->updates < 40) {
            char v[32];
            gd_metadata_entry md;
            snprintf(v, sizeof v, "%ld", r->rounds);
            md.key = "round";
            md.value = v;
            if (gd_client_set_metadata(r->client, &md, 1) != GD_OK) r->errors++;
            r->updates++;
        }
        r->rounds++;
    }
    return NULL;
}

static void concurrent_readers_of_a_watching_client(void) {
    struct mesh m;
    struct watch_ctx w;
    struct reader readers[READERS];
    gd_subscriber_options so;
    gd_client *a = NULL, *b = NULL;
    gd_subscriber *sub;
    int started = 0, i, calls, mismatches, errors;

    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.mu, NULL);
    rec_init(&w.rec);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&so, &m);
    CHECK_RC(join_as(&m, "member-a", &so, &a), GD_OK);
    sub = gd_client_subscriber(a);
    CHECK(sub != NULL);
    CHECK(gd_client_subscriber(a) == sub);
    pthread_mutex_lock(&w.mu);
    w.client = a;
    w.expect = sub;
    pthread_mutex_unlock(&w.mu);
    CHECK_RC(gd_on_event(sub, on_event, &w), GD_OK);
    CHECK_RC(gd_on_peers(sub, on_peers, &w), GD_OK);
    WAIT_PEERS(&w.rec, "member-a");

    memset(readers, 0, sizeof readers);
    for (i = 0; i < READERS; i++) {
        readers[i].index = i;
        readers[i].client = a;
        readers[i].expect = sub;
        readers[i].want = "member-a,member-b";
        if (pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]) != 0) break;
        started++;
    }
    /* The second member joins while the readers run. */
    if (join_as(&m, "member-b", NULL, &b) != GD_OK) fprintf(stderr, "  member-b could not join\n");
    for (i = 0; i < started; i++) pthread_join(readers[i].thread, NULL);
    CHECK(started == READERS);
    CHECK(b != NULL);

    for (i = 0; i < READERS; i++) {
        struct reader *r = &readers[i];
        if (r->mismatches || r->errors || !r->saw_want || r->rounds < MIN_ROUNDS)
            fprintf(stderr, "  reader %d: %ld rounds, %d mismatches, %d errors, saw [%s]: %d (last [%s])\n", i,
                    r->rounds, r->mismatches, r->errors, r->want, r->saw_want, r->last);
        CHECK(r->mismatches == 0);
        CHECK(r->errors == 0);
        CHECK(r->saw_want);
        CHECK(r->rounds >= MIN_ROUNDS);
    }
    CHECK(readers[0].updates > 0);
    WAIT_PEERS(&w.rec, "member-a,member-b");
    WAIT_EVENT(&w.rec, "updated member-a none round=");

    CHECK_RC(gd_client_close(b), GD_OK);
    WAIT_PEERS(&w.rec, "member-a");
    CHECK_RC(gd_client_close(a), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);

    pthread_mutex_lock(&w.mu);
    calls = w.calls;
    mismatches = w.mismatches;
    errors = w.errors;
    pthread_mutex_unlock(&w.mu);
    if (mismatches || errors) fprintf(stderr, "  callbacks: %d calls, %d mismatches, %d errors\n", calls, mismatches, errors);
    CHECK(calls > 0);
    CHECK(mismatches == 0);
    CHECK(errors == 0);
    {
        long lo = readers[0].rounds, hi = readers[0].rounds;
        for (i = 1; i < READERS; i++) {
            if (readers[i].rounds < lo) lo = readers[i].rounds;
            if (readers[i].rounds > hi) hi = readers[i].rounds;
        }
        printf("# %d readers, %ld to %ld rounds each, %d metadata updates; %d callback calls\n", READERS, lo, hi,
               readers[0].updates, calls);
    }
    rec_destroy(&w.rec);
    pthread_mutex_destroy(&w.mu);
}

int main(void) {
    if (setup() != 0) return 1;
    RUN(concurrent_readers_of_a_watching_client);
    return finish();
}
