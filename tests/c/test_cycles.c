/*
 * Open/close cycles of every handle kind: the process must not grow. Counted
 * after a warm-up (NNG starts its global threads on first use): open file
 * descriptors and threads must come back to at most the number before. Memory
 * is left to the sanitizer (tests/c/run.sh builds this with AddressSanitizer +
 * LeakSanitizer: any leak fails the run).
 *
 *     test_cycles [N]    N cycles of each kind (default 1000)
 */
#include "common.h"

#include <dirent.h>

static int g_cycles = 1000;

static int count_entries(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

struct usage {
    int fds, threads;
};

static struct usage usage_now(void) {
    struct usage u;
    u.fds = count_entries("/proc/self/fd");
    u.threads = count_entries("/proc/self/task");
    return u;
}

/* Threads of a closed handle are joined before close returns; NNG closes
 * connections on its reaper thread a little later, so the counts are awaited
 * (with a deadline) rather than read once. */
static int settled(struct usage before, struct usage *after) {
    long long end = now_ms() + 15000;
    for (;;) {
        *after = usage_now();
        /* Fewer is fine: the warm-up's own connections may close late. */
        if (after->fds <= before.fds && after->threads <= before.threads) return 1;
        if (now_ms() >= end) return 0;
        pause_ms(10);
    }
}

/* 1 when the counts came back to `before`; reports the difference otherwise. */
static int no_growth(struct usage before) {
    struct usage after;
    if (settled(before, &after)) return 1;
    fprintf(stderr, "  fds %d -> %d, threads %d -> %d\n", before.fds, after.fds, before.threads, after.threads);
    return 0;
}

static void server_cycles(void) {
    struct mesh m;
    struct usage before;
    CHECK_RC(mesh_start(&m), GD_OK); /* warm-up */
    CHECK_RC(gd_server_close(m.server), GD_OK);
    before = usage_now();
    for (int i = 0; i < g_cycles; i++) {
        gd_server *s;
        gd_server_options o;
        gd_server_options_init(&o);
        /* The same URLs every time: a closed server frees its addresses. */
        o.survey = m.survey;
        o.publish = m.publish;
        o.snapshot = m.snapshot;
        CHECK_RC(gd_server_start(&o, &s), GD_OK);
        CHECK_RC(gd_server_close(s), GD_OK);
    }
    CHECK(no_growth(before));
}

static void client_cycles(void) {
    struct mesh m;
    struct usage before;
    gd_client *c;
    gd_metadata_entry md[1] = {{"zone", "a"}};
    CHECK_RC(mesh_start(&m), GD_OK);
    CHECK_RC(join_as(&m, "warm-up", NULL, &c), GD_OK);
    CHECK_RC(gd_client_close(c), GD_OK);
    before = usage_now();
    for (int i = 0; i < g_cycles; i++) {
        CHECK_RC(join_as(&m, "cycling-member", NULL, &c), GD_OK);
        CHECK_RC(gd_client_set_metadata(c, md, 1), GD_OK);
        CHECK_RC(gd_client_close(c), GD_OK);
    }
    int ok = no_growth(before);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    CHECK(ok);
}

static void subscriber_cycles(void) {
    struct mesh m;
    struct recorder r;
    struct usage before;
    gd_subscriber_options o;
    gd_subscriber *s;
    gd_peer_list *list;
    rec_init(&r);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&o, &m);
    o.on_peers = rec_peers;
    o.on_event = rec_event;
    o.user = &r;
    CHECK_RC(gd_subscriber_open(&o, &s), GD_OK);
    CHECK_RC(gd_subscriber_close(s), GD_OK);
    before = usage_now();
    for (int i = 0; i < g_cycles; i++) {
        CHECK_RC(gd_subscriber_open(&o, &s), GD_OK);
        CHECK_RC(gd_subscriber_peers(s, &list), GD_OK);
        gd_peer_list_free(list);
        CHECK_RC(gd_subscriber_close(s), GD_OK);
    }
    int ok = no_growth(before);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
    CHECK(ok);
}

static void watching_client_cycles(void) {
    struct mesh m;
    struct recorder r;
    struct usage before;
    gd_subscriber_options w;
    gd_client *c;
    rec_init(&r);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&w, &m);
    w.on_peers = rec_peers;
    w.user = &r;
    CHECK_RC(join_as(&m, "warm-up", &w, &c), GD_OK);
    CHECK_RC(gd_client_close(c), GD_OK);
    before = usage_now();
    for (int i = 0; i < g_cycles; i++) {
        CHECK_RC(join_as(&m, "watching-member", &w, &c), GD_OK);
        CHECK_RC(gd_client_close(c), GD_OK);
    }
    int ok = no_growth(before);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
    CHECK(ok);
}

/* Peer lists are handles too: copies of a live list, freed one by one. */
static void peer_list_cycles(void) {
    struct mesh m;
    struct recorder r;
    gd_subscriber_options o;
    gd_subscriber *s;
    gd_client *c;
    rec_init(&r);
    CHECK_RC(mesh_start(&m), GD_OK);
    CHECK_RC(join_as(&m, "listed", NULL, &c), GD_OK);
    sub_options(&o, &m);
    o.on_peers = rec_peers;
    o.user = &r;
    CHECK_RC(gd_subscriber_open(&o, &s), GD_OK);
    WAIT_PEERS(&r, "listed");
    for (int i = 0; i < g_cycles; i++) {
        gd_peer_list *list;
        CHECK_RC(gd_subscriber_peers(s, &list), GD_OK);
        CHECK(list->count == 1 && strcmp(list->names[0], "listed") == 0);
        gd_peer_list_free(list);
    }
    CHECK_RC(gd_subscriber_close(s), GD_OK);
    CHECK_RC(gd_client_close(c), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

int main(int argc, char **argv) {
    if (argc > 1) g_cycles = atoi(argv[1]);
    if (setup() != 0) return 1;
    RUN(server_cycles);
    RUN(client_cycles);
    RUN(subscriber_cycles);
    RUN(watching_client_cycles);
    RUN(peer_list_cycles);
    return finish();
}
