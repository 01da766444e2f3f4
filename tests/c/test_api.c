/*
 * The C ABI's contract, call by call: results and messages, NULL and invalid
 * arguments, ownership, callbacks (threads, re-entry, closing), join/leave.
 * Run under valgrind by tests/c/run.sh: any invalid access or definite leak fails.
 */
#include "common.h"

#include <stddef.h>

/* ------------------------------------------------------------ results */

static void version_and_strerror(void) {
    CHECK(gd_version() != NULL && strchr(gd_version(), '.') != NULL);
    CHECK(strcmp(gd_nng_version(), "1.11.0") == 0);
    CHECK(gd_wire_version() >= 1);
    for (int code = 0; code <= 9; code++) {
        CHECK(gd_strerror(code) != NULL);
        CHECK(strcmp(gd_strerror(code), "unknown error code") != 0);
        for (int other = 0; other < code; other++) CHECK(strcmp(gd_strerror(code), gd_strerror(other)) != 0);
    }
    CHECK(strcmp(gd_strerror(GD_OK), "success") == 0);
    CHECK(strcmp(gd_strerror(42), "unknown error code") == 0);
    CHECK(strcmp(gd_strerror(-1), "unknown error code") == 0);
    CHECK(strcmp(gd_event_kind_str(GD_EVENT_LEFT), "left") == 0);
    CHECK(strcmp(gd_reason_str(GD_REASON_CLOSED), "closed") == 0);
    CHECK(strcmp(gd_reason_str(77), "unknown") == 0);
    CHECK(strcmp(gd_state_str(GD_STATE_LIVE), "live") == 0);
}

static void last_error_message_into_caller_buffer(void) {
    gd_server_options o;
    char buf[256], small[8];
    gd_server_options_init(&o);
    CHECK_RC(gd_server_start(&o, NULL), GD_INVALID_OPTION);
    size_t n = gd_last_error_message(NULL, 0);
    CHECK(n > 0);
    CHECK(gd_last_error_message(buf, sizeof buf) == n);
    CHECK(strlen(buf) == n);
    CHECK(strstr(buf, "gd_server_start") != NULL && strstr(buf, "out is NULL") != NULL);
    /* Cut to the buffer, always NUL-terminated; the full length is returned. */
    memset(small, 'x', sizeof small);
    CHECK(gd_last_error_message(small, sizeof small) == n);
    CHECK(strlen(small) == sizeof small - 1);
    CHECK(strncmp(small, buf, sizeof small - 1) == 0);
    /* len 0 writes nothing. */
    small[0] = 'x';
    CHECK(gd_last_error_message(small, 0) == n);
    CHECK(small[0] == 'x');
}

/* The message is per thread: another thread's failure does not show here. */
static void *fail_elsewhere(void *arg) {
    (void)arg;
    gd_client_join(NULL, NULL);
    return NULL;
}

static void last_error_is_per_thread(void) {
    char buf[256];
    pthread_t t;
    CHECK_RC(gd_subscriber_open(NULL, NULL), GD_INVALID_OPTION);
    CHECK(pthread_create(&t, NULL, fail_elsewhere, NULL) == 0);
    pthread_join(t, NULL);
    gd_last_error_message(buf, sizeof buf);
    CHECK(strstr(buf, "gd_subscriber_open") != NULL);
}

/* ------------------------------------------------------------ NULL and invalid arguments */

static void null_arguments_give_documented_codes(void) {
    gd_server *s = (gd_server *)&g_dir; /* sentinels: must stay untouched on failure */
    gd_client *c = (gd_client *)&g_dir;
    gd_subscriber *sub = (gd_subscriber *)&g_dir;
    gd_client_options co;
    gd_state st;
    uint64_t e, q;

    CHECK_RC(gd_server_options_init(NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_client_options_init(NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_subscriber_options_init(NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_server_start(NULL, NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_client_join(NULL, &c), GD_INVALID_OPTION);
    CHECK(c == (gd_client *)&g_dir);
    gd_client_options_init(&co);
    CHECK_RC(gd_client_join(&co, &c), GD_INVALID_MEMBER); /* name NULL */
    CHECK(c == (gd_client *)&g_dir);
    co.name = "x";
    CHECK_RC(gd_client_join(&co, NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_subscriber_open(NULL, NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_client_set_metadata(NULL, NULL, 0), GD_INVALID_OPTION);
    CHECK_RC(gd_on_peers(NULL, rec_peers, NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_on_event(NULL, rec_event, NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_subscriber_peers(NULL, NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_subscriber_state(NULL, &st), GD_INVALID_OPTION);
    CHECK_RC(gd_subscriber_position(NULL, &e, &q), GD_INVALID_OPTION);
    CHECK(gd_server_url(NULL, GD_SOCKET_SURVEY) == NULL);
    CHECK(gd_client_subscriber(NULL) == NULL);
    /* Freeing NULL is fine. */
    CHECK_RC(gd_server_close(NULL), GD_OK);
    CHECK_RC(gd_client_close(NULL), GD_OK);
    CHECK_RC(gd_subscriber_close(NULL), GD_OK);
    gd_peer_list_free(NULL);
    CHECK(s == (gd_server *)&g_dir && sub == (gd_subscriber *)&g_dir);
}

/* A bigger struct from a newer header: unknown fields must be zero. */
struct newer_server_options {
    gd_server_options v1;
    uint64_t future_field;
};

static void options_struct_size_is_checked(void) {
    struct newer_server_options big;
    gd_server_options o;
    gd_server *s = NULL;
    char msg[256];

    memset(&o, 0, sizeof o); /* forgot gd_server_options_init */
    CHECK_RC(gd_server_start(&o, &s), GD_INVALID_OPTION);
    gd_last_error_message(msg, sizeof msg);
    CHECK(strstr(msg, "gd_server_options_init") != NULL);
    memset(&o, 0xff, sizeof o); /* garbage */
    CHECK_RC(gd_server_start(&o, &s), GD_INVALID_OPTION);
    CHECK(s == NULL);

    struct mesh m;
    gd_server_options_init(&big.v1);
    big.v1.struct_size = sizeof big;
    new_url(m.survey, sizeof m.survey, "survey");
    new_url(m.publish, sizeof m.publish, "publish");
    new_url(m.snapshot, sizeof m.snapshot, "snapshot");
    big.v1.survey = m.survey;
    big.v1.publish = m.publish;
    big.v1.snapshot = m.snapshot;
    big.future_field = 1;
    CHECK_RC(gd_server_start(&big.v1, &s), GD_INVALID_OPTION);
    big.future_field = 0;
    CHECK_RC(gd_server_start(&big.v1, &s), GD_OK);
    CHECK_RC(gd_server_close(s), GD_OK);
}

static void invalid_values_give_documented_codes(void) {
    struct mesh m;
    gd_server_options so;
    gd_client_options co;
    gd_subscriber_options wo;
    gd_server *s = NULL, *s2 = NULL;
    gd_client *c = NULL;
    gd_subscriber *sub = NULL;
    const char *surveys[2] = {"ipc:///nonexistent/gd-test-survey", NULL};
    gd_metadata_entry md[2] = {{"zone", "a"}, {NULL, "b"}};

    gd_server_options_init(&so);
    so.survey = "no-scheme";
    CHECK_RC(gd_server_start(&so, &s), GD_INVALID_URL);
    so.survey = "nosuchtransport://x";
    CHECK_RC(gd_server_start(&so, &s), GD_INVALID_URL);
    so.survey = "\xff\xfe";
    CHECK_RC(gd_server_start(&so, &s), GD_INVALID_URL);
    gd_server_options_init(&so);
    so.interval_ms = 100;
    so.deadline_ms = 100;
    CHECK_RC(gd_server_start(&so, &s), GD_INVALID_OPTION);
    so.interval_ms = 0;
    CHECK_RC(gd_server_start(&so, &s), GD_INVALID_OPTION);
    CHECK(s == NULL);

    /* Address in use: a second server on the first one's bound tcp port. */
    gd_server_options_init(&so);
    so.survey = "tcp://127.0.0.1:0";
    so.publish = "tcp://127.0.0.1:0";
    so.snapshot = "tcp://127.0.0.1:0";
    CHECK_RC(gd_server_start(&so, &s), GD_OK);
    const char *bound = gd_server_url(s, GD_SOCKET_SURVEY);
    CHECK(bound != NULL && strncmp(bound, "tcp://127.0.0.1:", 16) == 0 && strcmp(bound, "tcp://127.0.0.1:0") != 0);
    CHECK(gd_server_url(s, GD_SOCKET_LEGACY_PUBLISH) == NULL); /* none asked for */
    CHECK(gd_server_url(s, 0) == NULL && gd_server_url(s, 5) == NULL && gd_server_url(s, -1) == NULL);
    so.survey = bound;
    CHECK_RC(gd_server_start(&so, &s2), GD_ADDRESS_IN_USE);
    CHECK(s2 == NULL);
    CHECK_RC(gd_server_close(s), GD_OK);

    CHECK_RC(mesh_start(&m), GD_OK);
    gd_client_options_init(&co);
    co.name = "";
    CHECK_RC(gd_client_join(&co, &c), GD_INVALID_MEMBER);
    co.name = "\xc3\x28"; /* invalid UTF-8 */
    CHECK_RC(gd_client_join(&co, &c), GD_INVALID_MEMBER);
    co.name = "member";
    co.surveys = NULL;
    co.survey_count = 1;
    CHECK_RC(gd_client_join(&co, &c), GD_INVALID_OPTION);
    co.surveys = surveys;
    co.survey_count = 2; /* second entry NULL */
    CHECK_RC(gd_client_join(&co, &c), GD_INVALID_URL);
    co.survey_count = 1;
    co.metadata = md;
    co.metadata_count = 2; /* second key NULL */
    CHECK_RC(gd_client_join(&co, &c), GD_INVALID_MEMBER);
    co.metadata = NULL;
    CHECK_RC(gd_client_join(&co, &c), GD_INVALID_OPTION);
    co.metadata_count = 0;
    co.reconnect_max_ms = 0;
    CHECK_RC(gd_client_join(&co, &c), GD_INVALID_OPTION);
    CHECK(c == NULL);

    sub_options(&wo, &m);
    wo.legacy = 1; /* a legacy publisher has no snapshot socket */
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_INVALID_OPTION);
    sub_options(&wo, &m);
    wo.stale_after = 0;
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_INVALID_OPTION);
    wo.stale_after = 3;
    wo.publish = "bad url";
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_INVALID_URL);
    CHECK(sub == NULL);

    /* A watching client's options are checked too, and nothing is left running. */
    co.reconnect_max_ms = 1000;
    co.watch = &wo;
    CHECK_RC(gd_client_join(&co, &c), GD_INVALID_URL);
    CHECK(c == NULL);
    CHECK_RC(gd_server_close(m.server), GD_OK);
}

static void set_metadata_checks_its_input(void) {
    struct mesh m;
    gd_client *c;
    gd_metadata_entry bad[1] = {{"k", NULL}};
    static char big[8192];
    gd_metadata_entry huge[1] = {{"k", big}};

    CHECK_RC(mesh_start(&m), GD_OK);
    CHECK_RC(join_as(&m, "meta-member", NULL, &c), GD_OK);
    CHECK_RC(gd_client_set_metadata(c, NULL, 0), GD_OK);
    CHECK_RC(gd_client_set_metadata(c, NULL, 3), GD_INVALID_OPTION);
    CHECK_RC(gd_client_set_metadata(c, bad, 1), GD_INVALID_MEMBER);
    memset(big, 'v', sizeof big - 1);
    CHECK_RC(gd_client_set_metadata(c, huge, 1), GD_INVALID_MEMBER);
    CHECK(gd_client_subscriber(c) == NULL); /* does not watch */
    CHECK_RC(gd_client_close(c), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
}

/* ------------------------------------------------------------ join, leave, events */

static void members_join_and_leave_with_events(void) {
    struct mesh m;
    struct recorder r;
    gd_subscriber_options wo;
    gd_subscriber *sub;
    gd_client *a, *b;
    gd_peer_list *list = NULL;
    gd_state st;
    uint64_t epoch = 0, seq = 0;
    gd_metadata_entry md[2] = {{"zone", "a"}, {"weight", "2"}};
    gd_metadata_entry md2[1] = {{"zone", "b"}};
    const char *surveys[1];
    gd_client_options co;

    rec_init(&r);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&wo, &m);
    wo.on_peers = rec_peers;
    wo.on_event = rec_event;
    wo.user = &r;
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_OK);
    WAIT_PEERS(&r, "");

    surveys[0] = m.survey;
    gd_client_options_init(&co);
    co.name = "http://10.0.0.2:8080";
    co.surveys = surveys;
    co.survey_count = 1;
    co.metadata = md;
    co.metadata_count = 2;
    CHECK_RC(gd_client_join(&co, &b), GD_OK);
    CHECK_RC(join_as(&m, "http://10.0.0.1:8080", NULL, &a), GD_OK);
    WAIT_PEERS(&r, "http://10.0.0.1:8080,http://10.0.0.2:8080");
    /* Metadata sorted by key. */
    WAIT_EVENT(&r, "joined http://10.0.0.2:8080 none weight=2 zone=a\n");
    WAIT_EVENT(&r, "joined http://10.0.0.1:8080 none\n");

    /* Polling copy: sorted, NULL-terminated, owned by the caller. */
    CHECK_RC(gd_subscriber_peers(sub, &list), GD_OK);
    CHECK(list->count == 2 && list->names[2] == NULL);
    CHECK(strcmp(list->names[0], "http://10.0.0.1:8080") == 0);
    CHECK(strcmp(list->names[1], "http://10.0.0.2:8080") == 0);
    gd_peer_list_free(list);
    CHECK_RC(gd_subscriber_state(sub, &st), GD_OK);
    CHECK(st == GD_STATE_LIVE);
    CHECK_RC(gd_subscriber_position(sub, &epoch, &seq), GD_OK);
    CHECK(epoch != 0 && seq >= 1); /* both joins may share one publication */

    CHECK_RC(gd_client_set_metadata(b, md2, 1), GD_OK);
    WAIT_EVENT(&r, "updated http://10.0.0.2:8080 none zone=b\n");
    pthread_mutex_lock(&r.mu);
    CHECK(r.last_generation == 1); /* the first metadata change of this incarnation */
    pthread_mutex_unlock(&r.mu);

    CHECK_RC(gd_client_close(a), GD_OK);
    WAIT_EVENT(&r, "left http://10.0.0.1:8080 closed\n");
    WAIT_PEERS(&r, "http://10.0.0.2:8080");
    CHECK_RC(gd_client_close(b), GD_OK);
    WAIT_PEERS(&r, "");
    CHECK_RC(gd_subscriber_close(sub), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

static void join_leave_cycles(void) {
    struct mesh m;
    struct recorder r;
    gd_subscriber_options wo;
    gd_subscriber *sub;
    char name[64], want[96];

    rec_init(&r);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&wo, &m);
    wo.on_peers = rec_peers;
    wo.on_event = rec_event;
    wo.user = &r;
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_OK);
    for (int i = 0; i < 20; i++) {
        gd_client *c;
        snprintf(name, sizeof name, "cycle-%02d", i);
        CHECK_RC(join_as(&m, name, NULL, &c), GD_OK);
        WAIT_PEERS(&r, name);
        CHECK_RC(gd_client_close(c), GD_OK);
        snprintf(want, sizeof want, "left %s closed\n", name);
        WAIT_EVENT(&r, want);
        WAIT_PEERS(&r, "");
    }
    CHECK_RC(gd_subscriber_close(sub), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

/* ------------------------------------------------------------ callbacks */

/* A watching client whose callback reads its own peer list and sets its own
 * metadata to the count it read. */
struct self_aware {
    struct recorder r;
    gd_client *client; /* stored by gd_client_join before any callback runs */
    int bad_list;
};

static void read_and_set(void *user, const char *const *peers, size_t count) {
    struct self_aware *s = user;
    gd_peer_list *list = NULL;
    char n[32];
    gd_metadata_entry md[1] = {{"seen", n}};
    (void)peers;
    if (gd_subscriber_peers(gd_client_subscriber(s->client), &list) != GD_OK || list->count != count)
        s->bad_list = 1;
    gd_peer_list_free(list);
    snprintf(n, sizeof n, "%zu", count);
    if (gd_client_set_metadata(s->client, md, 1) != GD_OK) s->bad_list = 1;
    rec_peers(&s->r, peers, count);
}

static void callback_reads_peers_and_sets_metadata(void) {
    struct mesh m;
    struct self_aware s;
    struct recorder watcher;
    gd_subscriber_options wo, w2;
    gd_subscriber *sub;
    gd_client *other;

    memset(&s, 0, sizeof s);
    rec_init(&s.r);
    rec_init(&watcher);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&w2, &m);
    w2.on_event = rec_event;
    w2.user = &watcher;
    CHECK_RC(gd_subscriber_open(&w2, &sub), GD_OK);
    sub_options(&wo, &m);
    wo.on_peers = read_and_set;
    wo.user = &s;
    CHECK_RC(join_as(&m, "self", &wo, &s.client), GD_OK);
    WAIT_PEERS(&s.r, "self");
    WAIT_EVENT(&watcher, "updated self none seen=1\n");
    CHECK_RC(join_as(&m, "other", NULL, &other), GD_OK);
    WAIT_PEERS(&s.r, "other,self");
    WAIT_EVENT(&watcher, "updated self none seen=2\n");
    CHECK(!s.bad_list);
    CHECK_RC(gd_client_close(other), GD_OK);
    CHECK_RC(gd_client_close(s.client), GD_OK);
    CHECK_RC(gd_subscriber_close(sub), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&s.r);
    rec_destroy(&watcher);
}

/* Callbacks that try to close their own handle: refused, handle still works. */
struct closer {
    struct recorder r;
    gd_subscriber *sub;
    gd_client *client;
    int tried;
    gd_result rc;
    char msg[512];
};

static void close_own_subscriber(void *user, const char *const *peers, size_t count) {
    struct closer *c = user;
    if (!c->tried) {
        c->tried = 1;
        c->rc = gd_subscriber_close(c->sub);
        gd_last_error_message(c->msg, sizeof c->msg);
    }
    rec_peers(&c->r, peers, count);
}

static void close_own_client(void *user, const char *const *peers, size_t count) {
    struct closer *c = user;
    if (!c->tried) {
        c->tried = 1;
        c->rc = gd_client_close(c->client);
        gd_last_error_message(c->msg, sizeof c->msg);
    }
    rec_peers(&c->r, peers, count);
}

static void callback_closing_its_own_handle_is_refused(void) {
    struct mesh m;
    struct closer c;
    gd_subscriber_options wo;
    gd_client *x;

    memset(&c, 0, sizeof c);
    rec_init(&c.r);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&wo, &m);
    wo.on_peers = close_own_subscriber;
    wo.user = &c;
    CHECK_RC(gd_subscriber_open(&wo, &c.sub), GD_OK);
    WAIT_PEERS(&c.r, "");
    CHECK(c.tried && c.rc == GD_INVALID_OPTION);
    CHECK(strstr(c.msg, "own callback") != NULL);
    /* Still open and delivering. */
    CHECK_RC(join_as(&m, "still-here", NULL, &x), GD_OK);
    WAIT_PEERS(&c.r, "still-here");
    CHECK_RC(gd_subscriber_close(c.sub), GD_OK);

    /* The same from a watching client's callback, on gd_client_close. */
    rec_destroy(&c.r);
    memset(&c, 0, sizeof c);
    rec_init(&c.r);
    wo.on_peers = close_own_client;
    CHECK_RC(join_as(&m, "self-closer", &wo, &c.client), GD_OK);
    WAIT_PEERS(&c.r, "self-closer,still-here");
    CHECK(c.tried && c.rc == GD_INVALID_OPTION);
    CHECK(strstr(c.msg, "gd_client_close") != NULL);
    /* A client's subscriber is not closed on its own. */
    CHECK_RC(gd_subscriber_close(gd_client_subscriber(c.client)), GD_INVALID_OPTION);
    CHECK_RC(gd_client_close(x), GD_OK);
    WAIT_PEERS(&c.r, "self-closer");
    CHECK_RC(gd_client_close(c.client), GD_OK);

    /* And from the first call of gd_on_peers, made on this thread. */
    rec_destroy(&c.r);
    memset(&c, 0, sizeof c);
    rec_init(&c.r);
    sub_options(&wo, &m);
    wo.on_peers = rec_peers;
    wo.user = &c.r;
    CHECK_RC(gd_subscriber_open(&wo, &c.sub), GD_OK);
    WAIT_PEERS(&c.r, "");
    CHECK_RC(gd_on_peers(c.sub, close_own_subscriber, &c), GD_OK);
    CHECK(c.tried && c.rc == GD_INVALID_OPTION);
    CHECK_RC(gd_subscriber_close(c.sub), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&c.r);
}

/* A long callback; another thread closes the handle while it runs. */
struct slow {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gd_subscriber *sub;
    int running, calls, after_close;
    int closed;
};

static void slow_peers(void *user, const char *const *peers, size_t count) {
    struct slow *s = user;
    gd_peer_list *list;
    (void)peers;
    (void)count;
    pthread_mutex_lock(&s->mu);
    if (s->closed) s->after_close = 1;
    s->running = 1;
    s->calls++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    /* Keep working (and calling the API) for a while. */
    for (int i = 0; i < 50; i++) {
        if (gd_subscriber_peers(s->sub, &list) == GD_OK) gd_peer_list_free(list);
        pause_ms(2);
    }
    pthread_mutex_lock(&s->mu);
    s->running = 0;
    pthread_mutex_unlock(&s->mu);
}

static void *close_subscriber_thread(void *arg) {
    struct slow *s = arg;
    gd_result rc = gd_subscriber_close(s->sub);
    pthread_mutex_lock(&s->mu);
    /* Close waited for the callback: it is not running any more. */
    s->closed = rc == GD_OK && !s->running ? 1 : -1;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void close_from_another_thread_while_callback_runs(void) {
    struct mesh m;
    struct slow s;
    struct recorder witness;
    gd_subscriber_options wo;
    gd_subscriber *w;
    gd_client *c1, *c2;
    pthread_t t;

    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    rec_init(&witness);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&wo, &m);
    wo.on_peers = slow_peers;
    wo.user = &s;
    CHECK_RC(gd_subscriber_open(&wo, &s.sub), GD_OK);
    CHECK_RC(join_as(&m, "churn-1", NULL, &c1), GD_OK);
    /* Wait until a callback is running, then close from another thread. */
    long long end = now_ms() + DEADLINE_MS;
    pthread_mutex_lock(&s.mu);
    while (!s.running && now_ms() < end) {
        pthread_mutex_unlock(&s.mu);
        pause_ms(1);
        pthread_mutex_lock(&s.mu);
    }
    int was_running = s.running;
    pthread_mutex_unlock(&s.mu);
    CHECK(was_running);
    CHECK(pthread_create(&t, NULL, close_subscriber_thread, &s) == 0);
    pthread_join(t, NULL);
    CHECK(s.closed == 1);
    /* More changes, seen by a witness: the closed subscriber's callback stays silent. */
    sub_options(&wo, &m);
    wo.on_peers = rec_peers;
    wo.user = &witness;
    CHECK_RC(gd_subscriber_open(&wo, &w), GD_OK);
    CHECK_RC(join_as(&m, "churn-2", NULL, &c2), GD_OK);
    WAIT_PEERS(&witness, "churn-1,churn-2");
    CHECK(!s.after_close);
    CHECK_RC(gd_client_close(c1), GD_OK);
    CHECK_RC(gd_client_close(c2), GD_OK);
    CHECK_RC(gd_subscriber_close(w), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    rec_destroy(&witness);
}

/* Registering later: the current list comes at once, on the calling thread. */
struct where {
    struct recorder r;
    pthread_t caller;
    int on_caller;
};

static void note_thread(void *user, const char *const *peers, size_t count) {
    struct where *w = user;
    if (pthread_equal(pthread_self(), w->caller)) w->on_caller++;
    rec_peers(&w->r, peers, count);
}

/* Replaces itself from inside a callback with `rec_peers` on the same recorder. */
struct replacer {
    struct recorder r;
    gd_subscriber *sub;
    int replaced;
};

static void replace_self(void *user, const char *const *peers, size_t count) {
    struct replacer *p = user;
    (void)peers;
    (void)count;
    if (!p->replaced) {
        p->replaced = 1;
        gd_on_peers(p->sub, rec_peers, &p->r);
    }
}

static void late_registration_and_replacement(void) {
    struct mesh m;
    struct where w;
    struct replacer p;
    struct recorder events;
    gd_subscriber_options wo;
    gd_subscriber *sub;
    gd_client *c, *d;

    memset(&w, 0, sizeof w);
    memset(&p, 0, sizeof p);
    rec_init(&w.r);
    rec_init(&p.r);
    rec_init(&events);
    CHECK_RC(mesh_start(&m), GD_OK);
    CHECK_RC(join_as(&m, "late-a", NULL, &c), GD_OK);
    sub_options(&wo, &m);
    wo.on_peers = rec_peers;
    wo.user = &events; /* only to learn when the first view is in */
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_OK);
    WAIT_PEERS(&events, "late-a");
    /* A callback set now gets the current list before gd_on_peers returns. */
    w.caller = pthread_self();
    CHECK_RC(gd_on_peers(sub, note_thread, &w), GD_OK);
    CHECK(w.on_caller == 1 && strcmp(w.r.peers, "late-a") == 0);
    CHECK_RC(gd_on_event(sub, rec_event, &events), GD_OK);
    CHECK_RC(join_as(&m, "late-b", NULL, &d), GD_OK);
    WAIT_PEERS(&w.r, "late-a,late-b");
    CHECK(w.on_caller == 1); /* later calls come from the library thread */
    WAIT_EVENT(&events, "joined late-b none\n");
    /* Removing: after gd_on_peers returns the old callback is never called. */
    CHECK_RC(gd_on_peers(sub, NULL, NULL), GD_OK);
    int before = rec_peer_calls(&w.r);

    /* Replacing from inside a callback: the new one gets the current list. */
    sub_options(&wo, &m);
    wo.on_peers = replace_self;
    wo.user = &p;
    /* Into p.sub: stored before any callback runs, so replace_self can use it. */
    CHECK_RC(gd_subscriber_open(&wo, &p.sub), GD_OK);
    WAIT_PEERS(&p.r, "late-a,late-b");
    CHECK(p.replaced);

    CHECK_RC(gd_client_close(d), GD_OK);
    WAIT_EVENT(&events, "left late-b closed\n");
    WAIT_PEERS(&p.r, "late-a");
    CHECK(rec_peer_calls(&w.r) == before);
    CHECK_RC(gd_client_close(c), GD_OK);
    CHECK_RC(gd_subscriber_close(sub), GD_OK);
    CHECK_RC(gd_subscriber_close(p.sub), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&w.r);
    rec_destroy(&p.r);
    rec_destroy(&events);
}

/* The client's subscriber takes gd_on_peers / gd_on_event like any other. */
static void watching_client_takes_callbacks(void) {
    struct mesh m;
    struct recorder r;
    gd_subscriber_options wo;
    gd_client *c, *d;

    rec_init(&r);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&wo, &m);
    CHECK_RC(join_as(&m, "watcher-member", &wo, &c), GD_OK);
    CHECK(gd_client_subscriber(c) != NULL);
    CHECK_RC(gd_on_event(gd_client_subscriber(c), rec_event, &r), GD_OK);
    CHECK_RC(gd_on_peers(gd_client_subscriber(c), rec_peers, &r), GD_OK);
    CHECK_RC(join_as(&m, "second", NULL, &d), GD_OK);
    WAIT_PEERS(&r, "second,watcher-member");
    WAIT_EVENT(&r, "joined second none\n");
    CHECK_RC(gd_client_close(d), GD_OK);
    WAIT_EVENT(&r, "left second closed\n");
    CHECK_RC(gd_client_close(c), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

/* Statistics: filled through size-carrying structs; an older caller's smaller
 * struct gets only the fields it knows. */
static void stats_fill_what_fits(void) {
    struct mesh m;
    struct recorder r;
    gd_subscriber_options wo;
    gd_client *c;
    gd_server_statistics ss;
    gd_subscriber_statistics sb;
    gd_client_statistics cs;
    gd_survey_url_statistics us;
    long long end;

    rec_init(&r);
    CHECK_RC(mesh_start(&m), GD_OK);
    sub_options(&wo, &m);
    wo.on_peers = rec_peers;
    wo.user = &r;
    CHECK_RC(join_as(&m, "http://10.0.0.9:8080", &wo, &c), GD_OK);
    WAIT_PEERS(&r, "http://10.0.0.9:8080");
    /* Until the member has answered a survey (not just announced itself). */
    end = now_ms() + DEADLINE_MS;
    do {
        memset(&ss, 0, sizeof ss);
        ss.struct_size = sizeof ss;
        CHECK_RC(gd_server_stats(m.server, &ss), GD_OK);
        if (ss.answers >= 1 && ss.answer_latency.count >= 1) break;
        pause_ms(10);
    } while (now_ms() < end);
    CHECK(ss.struct_size == sizeof ss);
    CHECK(ss.answers >= 1 && ss.announces == 1 && ss.joined == 1);
    CHECK(ss.survey_connections_opened == 1 && ss.publish_connections_opened == 1);
    CHECK(ss.answer_latency.count >= 1 && ss.round_lag.count >= 1);
    CHECK(gd_histogram_bounds()[0] == 0.0005 && gd_histogram_bounds()[11] == 2.5);

    sb.struct_size = sizeof sb;
    CHECK_RC(gd_subscriber_stats(gd_client_subscriber(c), &sb), GD_OK);
    CHECK(sb.state == GD_STATE_LIVE && sb.members == 1 && sb.epoch != 0 && sb.seq >= 1);
    CHECK(sb.publications >= 1 && sb.last_publication_age_ms >= 0);

    cs.struct_size = sizeof cs;
    CHECK_RC(gd_client_stats(c, &cs), GD_OK);
    CHECK(cs.connections == 1 && cs.announces_sent == 1 && cs.survey_url_count == 1);
    us.struct_size = sizeof us;
    CHECK_RC(gd_client_survey_url_stats(c, 0, &us), GD_OK);
    CHECK(strcmp(us.url, m.survey) == 0 && us.connected && us.announces_sent == 1);
    CHECK_RC(gd_client_survey_url_stats(c, 1, &us), GD_INVALID_OPTION);

    /* An older caller that knew only `answers`: the rest is left alone. */
    memset(&ss, 0xAB, sizeof ss);
    ss.struct_size = offsetof(gd_server_statistics, announces);
    CHECK_RC(gd_server_stats(m.server, &ss), GD_OK);
    CHECK(ss.struct_size == offsetof(gd_server_statistics, announces));
    CHECK(ss.answers >= 1 && ss.answers != 0xABABABABABABABABull);
    CHECK(ss.announces == 0xABABABABABABABABull);
    /* struct_size not set, or NULLs: refused, nothing written. */
    memset(&cs, 0, sizeof cs);
    CHECK_RC(gd_client_stats(c, &cs), GD_INVALID_OPTION);
    CHECK(cs.connections == 0);
    CHECK_RC(gd_client_stats(c, NULL), GD_INVALID_OPTION);
    CHECK_RC(gd_server_stats(NULL, &ss), GD_INVALID_OPTION);

    CHECK_RC(gd_client_close(c), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

/* Several servers: a subscriber merges them; gd_subscriber_servers reports each. */
static gd_server_list *servers_when(gd_subscriber *sub, int (*ok)(const gd_server_list *)) {
    gd_server_list *list = NULL;
    long long end = now_ms() + DEADLINE_MS;
    for (;;) {
        if (gd_subscriber_servers(sub, &list) != GD_OK)
            return NULL;
        if (ok(list) || now_ms() > end)
            return list;
        gd_server_list_free(list);
        pause_ms(10);
    }
}

static int both_live(const gd_server_list *l) { return l->live == 2; }
static int second_stale(const gd_server_list *l) { return l->servers[1].state == GD_STATE_STALE; }

static void two_servers_merged(void) {
    struct mesh m1, m2;
    struct recorder r;
    gd_subscriber_options wo;
    gd_subscriber *sub = NULL;
    gd_client *c;
    gd_server_urls urls[2];
    gd_server_list *list;
    gd_peer_list *peers = NULL;
    const char *surveys[2];
    gd_client_options co;

    rec_init(&r);
    CHECK_RC(mesh_start(&m1), GD_OK);
    CHECK_RC(mesh_start(&m2), GD_OK);
    urls[0].publish = m1.publish;
    urls[0].snapshot = m1.snapshot;
    urls[1].publish = m2.publish;
    urls[1].snapshot = m2.snapshot;
    gd_subscriber_options_init(&wo);
    wo.servers = urls;
    wo.servers_count = 2;
    wo.stale_after = 3;
    wo.on_peers = rec_peers;
    wo.on_event = rec_event;
    wo.user = &r;
    /* servers excludes publish; a count without an array is refused. */
    wo.publish = m1.publish;
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_INVALID_OPTION);
    wo.publish = NULL;
    wo.servers = NULL;
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_INVALID_OPTION);
    wo.servers = urls;
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_OK);
    /* The pairs were copied: the caller's array may change now. */
    urls[0].publish = urls[0].snapshot = urls[1].publish = urls[1].snapshot = "";

    surveys[0] = m1.survey;
    surveys[1] = m2.survey;
    gd_client_options_init(&co);
    co.name = "m";
    co.surveys = surveys;
    co.survey_count = 2;
    CHECK_RC(gd_client_join(&co, &c), GD_OK);
    WAIT_PEERS(&r, "m");
    WAIT_EVENT(&r, "joined m none\n");

    list = servers_when(sub, both_live);
    CHECK(list != NULL && list->count == 2 && list->live == 2);
    if (list) {
        CHECK(strcmp(list->servers[0].publish, m1.publish) == 0);
        CHECK(strcmp(list->servers[1].snapshot, m2.snapshot) == 0);
        CHECK(list->servers[0].epoch != 0 && list->servers[1].epoch != 0);
        CHECK(list->servers[0].epoch != list->servers[1].epoch);
        CHECK(list->servers[0].state == GD_STATE_LIVE);
        gd_server_list_free(list);
    }
    gd_server_list_free(NULL);

    /* One server gone: it turns stale in the status; the member stays. */
    CHECK_RC(gd_server_close(m2.server), GD_OK);
    list = servers_when(sub, second_stale);
    CHECK(list != NULL && list->servers[1].state == GD_STATE_STALE);
    gd_server_list_free(list);
    CHECK_RC(gd_subscriber_peers(sub, &peers), GD_OK);
    CHECK(peers->count == 1 && strcmp(peers->names[0], "m") == 0);
    gd_peer_list_free(peers);

    CHECK_RC(gd_client_close(c), GD_OK);
    WAIT_EVENT(&r, "left m closed\n");
    CHECK_RC(gd_subscriber_close(sub), GD_OK);
    CHECK_RC(gd_server_close(m1.server), GD_OK);
    rec_destroy(&r);
}

int main(void) {
    if (setup() != 0) return 1;
    RUN(version_and_strerror);
    RUN(last_error_message_into_caller_buffer);
    RUN(last_error_is_per_thread);
    RUN(null_arguments_give_documented_codes);
    RUN(options_struct_size_is_checked);
    RUN(invalid_values_give_documented_codes);
    RUN(set_metadata_checks_its_input);
    RUN(members_join_and_leave_with_events);
    RUN(two_servers_merged);
    RUN(join_leave_cycles);
    RUN(callback_reads_peers_and_sets_metadata);
    RUN(callback_closing_its_own_handle_is_refused);
    RUN(close_from_another_thread_while_callback_runs);
    RUN(late_registration_and_replacement);
    RUN(watching_client_takes_callbacks);
    RUN(stats_fill_what_fits);
    return finish();
}
